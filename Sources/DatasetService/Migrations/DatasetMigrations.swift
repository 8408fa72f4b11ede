public import ServiceKit

/// The Dataset schema, one versioned step at a time (PostgreSQL schema `dataset`, SQLite file `dataset.sqlite`).
public enum DatasetMigrations {
    public static let all: [Migration] = []
}
