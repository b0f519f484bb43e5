"""The schema's history as Alembic migrations (``digest.db.engine.migrate`` runs them)."""
