"""Start Streamlit in this process after importing what every page needs (what `serve()` runs).

`streamlit run` imports the page libraries only when the first viewer connects, which made that
first page take seconds longer than the rest; importing them here moves that cost to start-up.
"""

from __future__ import annotations

import sys


def main() -> None:
    """`python -m bankpipe.dashboard._launch APP [streamlit options]` = `streamlit run APP [options]`."""
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    import plotly.express  # noqa: F401
    from streamlit.web import cli

    from bankpipe.dashboard import charts, queries
    from bankpipe.settings import get_settings

    charts.base_map()  # reads the outline file once
    # MLflow is imported and its store opened in the background while nobody is looking yet.
    queries.warm_registry(get_settings().mlflow_tracking_uri)
    sys.argv = ["streamlit", "run", *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
