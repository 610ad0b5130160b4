"""Persistence: the ``Store`` protocol, the SQLite implementation and an in-memory one for tests."""
