public import ServiceKit

/// The Interaction schema, one versioned step at a time (PostgreSQL schema `interaction`, SQLite file `interaction.sqlite`).
public enum InteractionMigrations {
    public static let all: [Migration] = []
}
