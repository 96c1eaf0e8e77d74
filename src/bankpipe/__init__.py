"""bankpipe: an end-to-end banking data pipeline (bronze → silver → gold, fraud model, dashboard)."""

__version__ = "0.1.0"

# Every bankpipe log record is redacted (passwords, API keys) before any handler sees it.
from bankpipe.redact import install_log_redaction

install_log_redaction()
