"""Persistence: SQLite through aiosqlite. All SQL of the project lives in this package."""
