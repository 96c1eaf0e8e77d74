"""The whole pipeline with a known source password, Snowflake passphrase and FX API keys: none reaches a sink.

Sinks: the console (stdout and stderr), every file under the state dir (log file, dbt's logs and
target/, MLflow's store and artifacts), every table of the warehouse (ops.run_log, bronze `_source`,
everything). Run once as it should go, then with the source down and the FX API failing, so the
error paths write too. The Airflow task logs are covered in tests/dags/test_no_secret_in_task_logs.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.conftest import fresh_database
from tests.integration.test_fx_http import FakeApi, _Handler, closed_port
from tests.leaks import (
    FX_PATH_KEY,
    FX_QUERY_KEY,
    FX_USER_KEY,
    SNOWFLAKE_PASSPHRASE,
    SOURCE_PASSWORD,
    duckdb_text,
    in_text,
    in_tree,
    sqlite_text,
)

pytestmark = pytest.mark.integration


class _KeyedHandler(_Handler):
    """The Frankfurter stand-in behind an API key: `/<path key>/v1/...?apikey=<query key>`, else 401."""

    def do_GET(self) -> None:
        self.server.raw_paths.append(self.path)  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        prefix = f"/{FX_PATH_KEY}/v1"
        if not parts.path.startswith(prefix) or query.pop("apikey", None) != [FX_QUERY_KEY]:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        rest = {k: v[0] for k, v in query.items()}
        self.path = parts.path[len(prefix) :] + ("?" + urlencode(rest, safe=",") if rest else "")
        super().do_GET()


@pytest.fixture
def fx_api() -> Iterator[FakeApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeyedHandler)
    server.daemon_threads = True
    fake = FakeApi()
    server.api = fake  # type: ignore[attr-defined]
    server.raw_paths = fake.raw_paths = []  # type: ignore[attr-defined]  # as sent, key included
    port = server.server_address[1]
    fake.url = f"http://fx:{FX_USER_KEY}@127.0.0.1:{port}/{FX_PATH_KEY}/v1?apikey={FX_QUERY_KEY}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def source() -> Iterator[str]:
    """A test source (schema made as the DBA) and a login role whose password is the known secret."""
    role = f"bp_leak_{uuid.uuid4().hex[:8]}"
    with fresh_database() as url, psycopg.connect(url, autocommit=True) as dba:
        dba.execute(sql.SQL("create role {} login password {}").format(sql.Identifier(role), SOURCE_PASSWORD))
        dba.execute(f"grant select, insert, update, delete on all tables in schema public to {role}")
        params = conninfo_to_dict(url)
        # Trust auth on 127.0.0.1 ignores the password, but bankpipe holds it in the URL all the same.
        yield (
            f"postgresql://{role}:{quote(SOURCE_PASSWORD, safe='')}@{params.get('host', '127.0.0.1')}:"
            f"{params.get('port', 5432)}/{params['dbname']}"
        )
        dba.execute(f"drop owned by {role}")
        dba.execute(f"drop role {role}")


def _bankpipe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bankpipe", "--verbose", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_an_fx_key_in_the_path_and_the_query_is_used_and_never_shown(
    tmp_path: Path, fx_api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    """The key reaches the API (it answers 401 without), and only `***` reaches bronze and the logs."""
    from datetime import date

    from bankpipe.ingest import fx
    from bankpipe.settings import Settings

    settings = Settings(state_dir=tmp_path, fx_api_url=fx_api.url, fx_retries=0)
    with caplog.at_level("DEBUG"):
        result = fx.run(settings, date(2024, 1, 1), date(2024, 1, 12))
    assert result.source == "frankfurter" and result.fallback_reason is None and result.inserted > 0
    raw = fx_api.raw_paths[0]  # type: ignore[attr-defined]
    assert raw.startswith(f"/{FX_PATH_KEY}/v1/2024-01-01..2024-01-12?from=USD&to=")
    assert raw.endswith(f"&apikey={FX_QUERY_KEY}")
    sources = "\n".join(duckdb_text(settings.warehouse_file).values())
    assert f"127.0.0.1:{urlsplit(fx_api.url).port}/***/v1/2024-01-01..2024-01-12?" in sources
    assert not in_text(sources, "warehouse") + in_text(caplog.text, "log records") + in_tree(tmp_path)


@pytest.mark.slow
def test_no_secret_reaches_any_sink(tmp_path: Path, source: str, fx_api: FakeApi) -> None:
    state = tmp_path / "state"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BANKPIPE_", "SNOWFLAKE_"))},
        "BANKPIPE_STATE_DIR": str(state),
        "BANKPIPE_SOURCE_URL": source,
        "BANKPIPE_FX_API_URL": fx_api.url,
        "BANKPIPE_FX_RETRIES": "1",
        "BANKPIPE_SOURCE_CONNECT_ATTEMPTS": "2",
        "BANKPIPE_SOURCE_RETRY_BACKOFF_S": "0.1",
        # A key-pair passphrase in the environment, as a Snowflake deployment has it; DuckDB is used.
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": SNOWFLAKE_PASSPHRASE,
        "COLUMNS": "200",
    }
    console: list[tuple[str, subprocess.CompletedProcess[str]]] = []

    def step(name: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = _bankpipe(env, *args)
        console.append((name, result))
        assert (result.returncode == 0) is ok, f"{name}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    landing = state / "landing" / "transactions"
    # Small, yet long enough for both models to train (the fraud model needs 49 days of history):
    # MLflow's store then holds runs, params, tags and model artifacts to search.
    small = ["--customers", "200", "--transactions", "6000", "--days", "60"]
    step("generate", "generate", *small, "--out", str(tmp_path / "gen"), "--stream-out", str(landing), "--to-postgres")
    step("run", "run")
    assert fx_api.requests, "the run never called the FX API: its key was not exercised"
    step("status", "status")
    # Error paths: the FX API refuses (the run falls back to the snapshot and says why), the source is down.
    fx_api.always = 500
    step("fx failing", "ingest", "fx", "--start", "2024-01-01", "--end", "2024-01-12")
    # The key=value form this time, password quoted with its `'` escaped, as libpq wants it.
    params = conninfo_to_dict(source) | {"port": str(closed_port())}
    quoted = SOURCE_PASSWORD.replace("'", "\\'")
    down = make_conninfo(**{k: v for k, v in params.items() if k != "password"}) + f" password = '{quoted}'"
    assert conninfo_to_dict(down)["password"] == SOURCE_PASSWORD
    env["BANKPIPE_SOURCE_URL"] = down
    step("source down", "ingest", "batch", "--full", ok=False)
    step("status after failures", "status")
    step("source status", "source", "status")

    findings = []
    for name, result in console:
        findings += in_text(result.stdout, f"stdout of {name}") + in_text(result.stderr, f"stderr of {name}")
    findings += in_tree(state)
    for table, text in duckdb_text(state / "warehouse.duckdb").items():
        findings += in_text(text, f"warehouse table {table}")
    for table, text in sqlite_text(state / "mlflow.db").items():
        findings += in_text(text, f"mlflow.db table {table}")
    assert not findings, "\n".join(map(str, findings))

    # The checks looked at the real thing: the run wrote what each sink is for.
    tables = duckdb_text(state / "warehouse.duckdb")
    assert "127.0.0.1" in tables["bronze.raw_exchange_rates"]  # the FX `_source` URL, key masked
    assert "'frankfurter'" in tables["bronze.raw_exchange_rates"]  # the keyed API answered the run
    assert "***" in tables["bronze.raw_exchange_rates"]
    assert "cannot connect to the source database" in tables["ops.run_log"]
    assert (state / "logs" / "bankpipe.log").stat().st_size > 0
    assert any((state / "dbt" / "target").rglob("*.json")) and (state / "dbt" / "logs" / "dbt.log").exists()
    mlflow = sqlite_text(state / "mlflow.db")
    assert mlflow["runs"] and mlflow["params"] and any(state.rglob("MLmodel"))
