"""The source database: embedded server lifecycle, schema, and loading the seed's batch files."""

from bankpipe.source.db import connect, source_conninfo

__all__ = ["connect", "source_conninfo"]
