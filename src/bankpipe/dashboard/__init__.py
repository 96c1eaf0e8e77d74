"""The Streamlit dashboard over gold (+ ops, rejects, audit) and the model registry; read-only.

`serve(settings, port)` is what `bankpipe dashboard` calls. This module imports neither Streamlit
nor Plotly, so the CLI stays quick to start when the dashboard is not used.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from bankpipe.errors import BankpipeError
from bankpipe.settings import Settings

log = logging.getLogger(__name__)

APP = Path(__file__).with_name("app.py")
HOST = "127.0.0.1"
DEFAULT_PORT = 8501
REQUIRED = ("streamlit", "plotly")
STOP_TIMEOUT_S = 15


def child_env(settings: Settings) -> dict[str, str]:
    """BANKPIPE_* for the Streamlit process, so it reads what these settings point at (absolute paths)."""
    env = {
        "BANKPIPE_STATE_DIR": str(settings.state),
        "BANKPIPE_WAREHOUSE": settings.warehouse,
        "BANKPIPE_WAREHOUSE_PATH": str(settings.warehouse_file),
        "BANKPIPE_MLFLOW_URI": settings.mlflow_tracking_uri,
        "BANKPIPE_LOG_LEVEL": settings.log_level,
        "BANKPIPE_DASHBOARD_AUTH": settings.dashboard_auth,
        "BANKPIPE_DASHBOARD_ALLOWED_DOMAINS": settings.dashboard_allowed_domains,
        "BANKPIPE_DASHBOARD_ALLOWED_GROUPS": settings.dashboard_allowed_groups,
    }
    if getattr(settings, "dashboard_show_pii", None) is not None:
        env["BANKPIPE_DASHBOARD_SHOW_PII"] = str(bool(settings.dashboard_show_pii)).lower()  # type: ignore[attr-defined]
    if settings.warehouse == "snowflake":
        # Where to connect, never how to log in: secrets reach the child only from where they came
        # from (the environment or .env), as they reach every other stage.
        named = {
            "SNOWFLAKE_ACCOUNT": settings.snowflake_account,
            "SNOWFLAKE_USER": settings.snowflake_user,
            "SNOWFLAKE_WAREHOUSE": settings.snowflake_warehouse,
            "SNOWFLAKE_DATABASE": settings.snowflake_database,
            "SNOWFLAKE_ROLE": settings.snowflake_role,
            "SNOWFLAKE_PRIVATE_KEY_PATH": settings.snowflake_private_key_path,
        }
        env.update({name: str(value) for name, value in named.items() if value is not None})
    return env


def command(port: int = DEFAULT_PORT, host: str = HOST) -> list[str]:
    """The `streamlit run` command line: on `host` (loopback by default), headless, no usage statistics."""
    return [
        sys.executable,
        "-m",
        "bankpipe.dashboard._launch",  # `streamlit run`, with the page libraries imported up front
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--browser.serverAddress",
        host,
        "--client.toolbarMode",
        "viewer",
        "--theme.base",
        "light",
    ]


def _check_installed() -> None:
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        raise BankpipeError(f"the dashboard needs {', '.join(missing)}: pip install streamlit plotly")


def _check_port(port: int, host: str = HOST) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as exc:
            raise BankpipeError(
                f"port {port} on {host} is in use ({exc.strerror}); choose another with --port"
            ) from None


def _forward_signals(proc: subprocess.Popen[bytes]) -> Callable[[], None]:
    """Pass SIGTERM and SIGHUP on to Streamlit; return a function that restores the old handlers.

    Without this, a supervisor stopping `bankpipe dashboard` (systemd, Airflow, a test) would end
    this process and leave the Streamlit server running as an orphan.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signal handlers can only be set there

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)  # Streamlit shuts down; proc.wait() in serve() then returns

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def serve(settings: Settings, port: int = DEFAULT_PORT, host: str = HOST) -> None:
    """Run the dashboard on http://<host>:<port> until interrupted (blocks; Ctrl-C stops it)."""
    from bankpipe.dashboard.auth import check_bind, check_oidc_config

    check_bind(host, settings.dashboard_auth)  # before anything listens: no sign-in means loopback only
    _check_installed()
    if settings.dashboard_auth == "oidc":
        check_oidc_config()  # a missing [auth] key would otherwise surface only at the first sign-in
    _check_port(port, host)
    env = {**os.environ, **child_env(settings)}
    log.info(
        "dashboard on http://%s:%d (warehouse %s, sign-in %s)",
        host,
        port,
        settings.warehouse_location,
        settings.dashboard_auth,
    )
    proc = subprocess.Popen(command(port, host), env=env)
    restore = _forward_signals(proc)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return
    finally:
        restore()
    if code not in (0, -signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP):
        raise BankpipeError(f"the dashboard (streamlit) exited with code {code}; see its output above")


__all__ = ["APP", "DEFAULT_PORT", "HOST", "child_env", "command", "serve"]
