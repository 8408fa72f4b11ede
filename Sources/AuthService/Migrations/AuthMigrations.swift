public import ServiceKit

/// The Auth schema, one versioned step at a time (PostgreSQL schema `auth`, SQLite file `auth.sqlite`).
public enum AuthMigrations {
    public static let all: [Migration] = []
}
