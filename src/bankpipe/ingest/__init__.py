"""Ingestion to bronze: one module per source system (postgres, stream, fx)."""
