"""Read model storage (SQLite, PostgreSQL, memory), the projector runners, and operations."""
