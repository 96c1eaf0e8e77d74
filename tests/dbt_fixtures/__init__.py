"""Helpers that build a bronze layer for the dbt tests (ingestion is tested on its own)."""
