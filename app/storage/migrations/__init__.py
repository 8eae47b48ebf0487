"""Alembic migrations for the Hotline database (run by ``Database.migrate()``)."""
