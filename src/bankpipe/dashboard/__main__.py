"""`python -m bankpipe.dashboard [--port N]`: the dashboard without the CLI (same as `bankpipe dashboard`)."""

from __future__ import annotations

import argparse

from bankpipe.dashboard import DEFAULT_PORT, serve
from bankpipe.settings import get_settings


def main() -> None:
    """Parse --port and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m bankpipe.dashboard", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()
    serve(get_settings(), args.port)


if __name__ == "__main__":
    main()
