"""API-key scopes (a light module: the CLI reads it without loading the store)."""

SCOPES: tuple[str, ...] = ("ingest", "read", "admin")
