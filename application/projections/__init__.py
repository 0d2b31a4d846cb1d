"""What each read model does with each event, pure of SQL: the store is injected."""
