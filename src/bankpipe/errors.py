"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class BankpipeError(Exception):
    """An error a user can act on (bad input, missing source, …); never shown as a traceback."""


class SourceError(BankpipeError):
    """The source database cannot be reached or is not in the expected shape."""


class InputFileError(BankpipeError):
    """An input file is missing or malformed; the message names the file and what is wrong."""


class WarehouseBusyError(BankpipeError):
    """Another process held the warehouse's lock for longer than the caller was willing to wait."""
