"""Storage: the pydantic event mapper and the choice of eventsourcing recorder."""
