"""Wire contract v1: input events (msgspec, hot path) and output records (pydantic)."""
