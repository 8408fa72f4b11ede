public import ServiceKit

/// The Ranking schema, one versioned step at a time (PostgreSQL schema `ranking`, SQLite file `ranking.sqlite`).
public enum RankingMigrations {
    public static let all: [Migration] = []
}
