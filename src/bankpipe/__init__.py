"""bankpipe: an end-to-end banking data pipeline (bronze → silver → gold, fraud model, dashboard)."""

__version__ = "0.1.0"
