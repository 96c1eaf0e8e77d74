"""`bankpipe transform`: `dbt build` of silver and gold, in-process, with a profile made from Settings.

Nothing is written into the repository: profiles.yml, dbt's target/ (compiled SQL, manifest,
partial-parse cache) and logs/ all live under `<state>/dbt/`. No SQL lives here; the models do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bankpipe import __version__, ops
from bankpipe.errors import BankpipeError
from bankpipe.logs import NODE_LOGGER, progress
from bankpipe.settings import Settings

log = logging.getLogger(__name__)
node_log = logging.getLogger(NODE_LOGGER)

PROFILE = "bankpipe"
# Statuses dbt reports for nodes that did not do their job.
_BAD_STATUSES = {"error", "fail", "runtime error"}
_SKIPPED = "skipped"
# How many stored failing rows to quote per failed test in the one-line error.
_QUOTE_ROWS = 2


@dataclass(frozen=True)
class NodeResult:
    """What dbt reported for one node (model, seed, test, unit test, snapshot)."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    message: str | None
    failures: int | None
    seconds: float
    relation: str | None = None


@dataclass
class TransformResult:
    """The outcome of one `dbt build`; `run()` only returns it when every node succeeded."""

    run_id: str
    success: bool
    seconds: float
    nodes: list[NodeResult] = field(default_factory=list)
    scope: str = "everything"  # why this build built what it built (see plan())

    def count(self, resource_type: str, status: str | None = None) -> int:
        """Nodes of a type (`model`, `test`, `unit_test`, `seed`), optionally with a given status."""
        return sum(1 for n in self.nodes if n.resource_type == resource_type and (status is None or n.status == status))

    @property
    def failed(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.status in _BAD_STATUSES]

    @property
    def warned(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.status == "warn"]

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary for the run log and `bankpipe status`."""
        by_status: dict[str, int] = {}
        for n in self.nodes:
            key = f"{n.resource_type}:{n.status}"
            by_status[key] = by_status.get(key, 0) + 1
        return {
            "seconds": round(self.seconds, 2),
            "scope": self.scope,
            "nodes": by_status,
            "failed": [n.name for n in self.failed],
            "warned": [n.name for n in self.warned],
        }


# --- where things are ---------------------------------------------------------------------------


def project_dir() -> Path:
    """The dbt project: `dbt/` of the source checkout (src/bankpipe/transform.py → ../../dbt).

    A wheel would have to ship it as package data at `bankpipe/dbt_project/`; that location is
    tried first so such a build works without code changes.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "dbt_project", here.parents[1] / "dbt"):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    raise BankpipeError(f"dbt project not found (looked in {here / 'dbt_project'} and {here.parents[1] / 'dbt'})")


def dbt_state_dir(settings: Settings) -> Path:
    """`<state>/dbt`: profiles.yml, target/ and logs/ of every dbt invocation."""
    path = settings.state / "dbt"
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- profiles.yml -------------------------------------------------------------------------------


def _duckdb_output(settings: Settings) -> dict[str, Any]:
    from bankpipe.warehouse.duckdb import resources

    return {
        "type": "duckdb",
        "path": str(settings.warehouse_file),
        # Models all name their schema (silver/gold/audit); this is only dbt's fallback.
        "schema": "main",
        "threads": 4,
        # The memory limit and threads of bankpipe's own connections, set when dbt-duckdb opens the file:
        # the same configuration, so DuckDB's per-process instance cache never finds two (it refuses that).
        "config_options": resources(settings),
    }


def _snowflake_output(settings: Settings) -> dict[str, Any]:
    # Secrets stay out of the file: dbt reads them from the environment at run time (env_var),
    # which _secret_env() fills from Settings for the duration of the run.
    out: dict[str, Any] = {
        "type": "snowflake",
        "account": "{{ env_var('SNOWFLAKE_ACCOUNT') }}",
        "user": "{{ env_var('SNOWFLAKE_USER') }}",
        "role": settings.snowflake_role,
        "warehouse": settings.snowflake_warehouse,
        "database": settings.snowflake_database,
        "schema": "PUBLIC",
        "threads": 8,
        "client_session_keep_alive": False,
        # Fail in seconds, not after the connector's minutes of retries, when Snowflake is unreachable.
        "connect_timeout": 30,
        "connect_retries": 1,
    }
    if settings.snowflake_private_key_path is not None:
        # Key-pair login (service users): the key file's path is not a secret, its passphrase is.
        out["private_key_path"] = str(settings.snowflake_private_key_path)
        if settings.snowflake_private_key_passphrase is not None:
            out["private_key_passphrase"] = "{{ env_var('SNOWFLAKE_PRIVATE_KEY_PASSPHRASE') }}"
    else:
        out["password"] = "{{ env_var('SNOWFLAKE_PASSWORD') }}"
    return out


_OUTPUTS = {"duckdb": _duckdb_output, "snowflake": _snowflake_output}


def profiles(settings: Settings) -> dict[str, Any]:
    """The profiles.yml content for the configured warehouse (target name = warehouse kind)."""
    return {
        PROFILE: {"target": settings.warehouse, "outputs": {settings.warehouse: _OUTPUTS[settings.warehouse](settings)}}
    }


def write_profiles(settings: Settings) -> Path:
    """Write `<state>/dbt/profiles.yml` (regenerated every run: Settings are the source of truth)."""
    path = dbt_state_dir(settings) / "profiles.yml"
    path.write_text(
        "# Generated by bankpipe.transform from Settings; edits are overwritten.\n"
        + yaml.safe_dump(profiles(settings), sort_keys=False),
        encoding="utf-8",
    )
    return path


@contextmanager
def _secret_env(settings: Settings) -> Iterator[None]:
    """Expose the secrets profiles.yml names via env_var() while dbt runs, then restore the env."""
    wanted: dict[str, str] = {}
    if settings.warehouse == "snowflake":
        key_pair = settings.snowflake_private_key_path is not None
        required = [("SNOWFLAKE_ACCOUNT", settings.snowflake_account), ("SNOWFLAKE_USER", settings.snowflake_user)]
        if not key_pair:
            secret = settings.snowflake_password
            required.append(("SNOWFLAKE_PASSWORD", secret.get_secret_value() if secret else None))
        for name, value in required:
            if not value:
                raise BankpipeError(
                    f"{name} is not set (needed for BANKPIPE_WAREHOUSE=snowflake"
                    f"{'' if key_pair else ', or set SNOWFLAKE_PRIVATE_KEY_PATH for key-pair login'})"
                )
            wanted[name] = value
        if key_pair and settings.snowflake_private_key_passphrase is not None:
            wanted["SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"] = settings.snowflake_private_key_passphrase.get_secret_value()
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


# --- running dbt --------------------------------------------------------------------------------


def _common_flags(settings: Settings) -> list[str]:
    state = dbt_state_dir(settings)
    return [
        "--project-dir",
        str(project_dir()),
        "--profiles-dir",
        str(state),
        "--target-path",
        str(state / "target"),
        "--log-path",
        str(state / "logs"),
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "--no-use-colors",
        # dbt's own console output is replaced by one log line per node (see _Events);
        # its file log (debug) stays under the state dir.
        "--log-level",
        "none",
        "--log-level-file",
        "debug",
    ]


class _Events:
    """dbt's events of one invocation: one log line per finished node, and the build's progress for the console.

    The node lines go to the `bankpipe.transform.nodes` logger: the log file always, the console only
    with -v or when a node warns or fails (bankpipe.logs). dbt calls this from its worker threads.
    """

    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        name = event.info.name
        if name == "ConcurrencyLine":  # "Concurrency: N threads", after dbt knows how many nodes it runs
            self.total = int(getattr(event.data, "node_count", 0)) or None
            progress(0, self.total, "dbt build")
            return
        if name != "NodeFinished":
            return
        result = event.data.run_result
        node = event.data.node_info
        status = str(result.status)
        level = {"success": logging.INFO, "pass": logging.INFO, "skipped": logging.DEBUG}.get(status, logging.WARNING)
        kind = node.unique_id.split(".", 1)[0]
        node_log.log(level, "%-7s %s %s (%.1fs)", status, kind, node.node_name, float(result.execution_time or 0))
        with self._lock:
            self.done += 1
            done = self.done
        progress(done, self.total, "dbt build")


# For dbt invocations made outside invoke() (tests/snowflake): the same lines.
_on_event = _Events()


def _release_duckdb() -> None:
    """Close dbt-duckdb's process-wide connection so the file is free for other processes."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter
        return
    env = DuckDBConnectionManager._ENV
    if env is not None:
        try:
            env.close()
        finally:
            DuckDBConnectionManager._ENV = None


def invoke(settings: Settings, args: Sequence[str]) -> Any:
    """Run one dbt command (`["build", ...]`, `["docs", "generate"]`) in-process; return dbt's result.

    Raises BankpipeError when dbt could not run at all (bad project, no warehouse access);
    failing models and tests are reported in the returned result, not raised here.
    """
    from dbt.cli.main import dbtRunner

    write_profiles(settings)
    cli_args = [*args, *_common_flags(settings)]
    log.debug("dbt %s", " ".join(cli_args))
    if args and args[0] in {"build", "run", "test"}:
        from bankpipe import pii

        pii.install_key(settings)  # the models' pseudonym key, read from the warehouse (dbt/macros/pii.sql)
    with _secret_env(settings):
        try:
            res = dbtRunner(callbacks=[_Events()]).invoke(cli_args)
        finally:
            _release_duckdb()
    if res.exception is not None:
        first = str(res.exception).strip().splitlines()
        raise BankpipeError(f"dbt {args[0]} could not run: {first[0] if first else type(res.exception).__name__}")
    return res


def _node_results(res: Any) -> list[NodeResult]:
    out: list[NodeResult] = []
    for r in getattr(res.result, "results", None) or []:
        node = r.node
        out.append(
            NodeResult(
                unique_id=node.unique_id,
                name=node.name,
                resource_type=str(node.resource_type),
                status=str(r.status),
                message=r.message,
                failures=r.failures,
                seconds=float(r.execution_time or 0.0),
                relation=getattr(node, "relation_name", None),
            )
        )
    return out


def _quote_failures(settings: Settings, node: NodeResult) -> str:
    """The first stored failing rows of a test, as text (`failure_message` when the test has one)."""
    if not node.relation or settings.warehouse != "duckdb":
        return ""
    from bankpipe.warehouse import connect

    try:
        with connect(settings, read_only=True) as wh:
            rows = wh.fetchall(f"select * from {node.relation} limit {_QUOTE_ROWS}")
            cols = [d[0] for d in wh.con.description or []]  # type: ignore[attr-defined]
    except Exception as exc:  # the quote is a courtesy; the failure itself is already known
        log.debug("could not read failures of %s: %s", node.name, exc)
        return ""
    if not rows:
        return ""
    if "failure_message" in cols:
        idx = cols.index("failure_message")
        return "; ".join(str(row[idx]) for row in rows)
    return "; ".join(", ".join(f"{c}={v}" for c, v in zip(cols, row, strict=False)) for row in rows)


def _one_line(text: str | None, limit: int = 300) -> str:
    """dbt's multi-line messages as one line (the full text is in dbt.log)."""
    flat = " ".join(part.strip() for part in (text or "").splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _failure_line(settings: Settings, result: TransformResult) -> str:
    parts = []
    for node in result.failed:
        if node.resource_type == "test" and node.status == "fail":
            detail = _quote_failures(settings, node)
            parts.append(f"test {node.name}: {detail or f'{node.failures} failing row(s)'}")
        else:
            parts.append(f"{node.resource_type} {node.name}: {_one_line(node.message) or node.status}")
    skipped = result.count("model", _SKIPPED)
    log_file = dbt_state_dir(settings) / "logs" / "dbt.log"
    tail = f" ({skipped} downstream model(s) skipped; detail in {log_file})" if skipped else f" (detail in {log_file})"
    return f"dbt build failed: {len(parts)} node(s) — " + " | ".join(parts) + tail


# --- what to build -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What one transform builds, and why."""

    select: list[str] | None  # dbt --select; None builds everything
    reason: str
    marks: dict[str, str] | None = None  # bronze as this build found it (recorded when it succeeds)
    project: str | None = None
    # Test only the transactions this build adds (dbt/macros/tests/test_window.sql): when new
    # stream files are all that changed. New master data or rates can change earlier rows too.
    test_window: bool = False
    # The project is the one the last build parsed, so its manifest.json stands (see run()).
    same_project: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return self.select == []


def project_fingerprint() -> str:
    """SHA-256 of the dbt project's files and bankpipe's version: when it changes, everything is rebuilt."""
    root = project_dir()
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.split("/", 1)[0] in {"target", "logs", "dbt_packages"} or path.name.startswith("."):
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def bronze_marks(wh: Any) -> dict[str, str]:
    """Rows and latest `_loaded_at` of each bronze source table: the bronze a build consumes."""
    return {name: f"{n}@{latest}" for name, (n, latest) in ops.bronze_loads(wh).items()}


def _last_build(wh: Any) -> tuple[str | None, dict[str, str] | None]:
    """Project fingerprint and bronze marks of the last successful whole (unselected) build."""
    rows = wh.fetchall(
        "select details from ops.run_log where step = 'transform' and status = 'success'"
        " order by started_at desc limit 50"
    )
    for (details,) in rows:
        found = json.loads(details) if isinstance(details, str) else details
        if isinstance(found, dict) and found.get("bronze_marks"):
            return found.get("project"), found["bronze_marks"]
    return None, None


def plan(settings: Settings, select: list[str] | None = None, *, everything: bool = False) -> Scope:
    """Choose what to build: what the new bronze data reaches, unless told otherwise.

    A source table with the same row count and latest `_loaded_at` as at the last successful build
    has nothing new, so the models that only it feeds (and their tests) are up to date; dbt builds
    `source:bronze.<table>+` for each table that changed. The first build, `everything` (full
    refresh, unit tests, `--all`) and any change to the dbt project or to bankpipe's version build
    everything. The marks live in ops.run_log, in the warehouse itself, so every Airflow worker
    sees the same ones.
    """
    from bankpipe.warehouse import connect

    if select:
        return Scope(list(select), "as selected")
    project = project_fingerprint()
    # Also creates bronze/ops on a new DuckDB file, so the sources exist before the first ingestion.
    with connect(settings) as wh:
        marks = bronze_marks(wh)
        last_project, last_marks = _last_build(wh)
    if everything:
        return Scope(None, "everything, as asked", marks, project)
    if last_marks is None:
        return Scope(None, "first build", marks, project)
    if last_project != project:
        return Scope(None, "the dbt project or bankpipe changed since the last build", marks, project)
    changed = sorted(t for t in marks if marks[t] != last_marks.get(t))
    if not changed:
        return Scope([], "nothing new in bronze since the last build", marks, project)
    return Scope(
        [f"source:bronze.{t}+" for t in changed],
        f"new data in bronze.{', bronze.'.join(changed)}",
        marks,
        project,
        test_window=changed == ["raw_transactions"],
        same_project=True,
    )


_WINDOW = "audit.test_window"


def _set_test_window(settings: Settings, on: bool) -> bool:
    """Record the transactions' watermark in audit.test_window (on), or drop it (off); return whether it is set."""
    from bankpipe.warehouse import connect

    with connect(settings) as wh:
        wh.execute("create schema if not exists audit")
        if on and wh.table_exists("silver", "base_transactions"):
            watermark = "select max(loaded_at) as tested_since from silver.base_transactions"
            wh.execute(f"create or replace table {_WINDOW} as {watermark}")
            return True
        wh.execute(f"drop table if exists {_WINDOW}")
        return False


class _RunLogWarehouse:
    """A warehouse that connects per statement, so no bankpipe connection is open while dbt runs.

    DuckDB lets one process hold a file for writing, with one connection configuration; dbt-duckdb
    opens its own, so the run log row is written before and after dbt, each time on a fresh connection.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        from bankpipe.warehouse import connect

        with connect(self.settings) as wh:
            wh.execute(sql, params)


def run(
    settings: Settings,
    select: list[str] | None = None,
    full_refresh: bool = False,
    unit_tests: bool = False,
    everything: bool = False,
) -> TransformResult:
    """Run `dbt build` (seeds, models, snapshots, data tests) of what new bronze data reaches; log it in ops.run_log.

    `plan()` chooses the scope; with nothing new in bronze no dbt runs at all. dbt unit tests run
    only with `unit_tests=True` (which builds everything): their inputs are static fixtures, so
    they check the SQL, not the data — dbt's advice is to run them in development and CI, not on
    every production build (`make test` runs them). Raises BankpipeError naming the failing models
    and tests (and the numbers of a failed reconciliation) when the build fails.
    """
    scope = plan(settings, select, everything=everything or full_refresh or unit_tests)
    args = ["build"]
    if scope.select:
        args += ["--select", *scope.select]
    if full_refresh:
        args.append("--full-refresh")
    if not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    # dbt writes manifest.json twice per build (after parsing, and again at the end), about 1 s at
    # this project's size; with the project unchanged since the last build the one on disk stands,
    # so dbt writes no JSON and run_results.json is written here instead.
    results_path = dbt_state_dir(settings) / "target" / "run_results.json"
    reuse_manifest = scope.same_project and (results_path.parent / "manifest.json").is_file()
    if reuse_manifest:
        args.append("--no-write-json")
    if scope.nothing_to_do:
        log.info("transform: %s; nothing to build (--all builds anyway)", scope.reason)
    else:
        log.info("transform: %s — building %s", scope.reason, " ".join(scope.select or []) or "everything")
    with ops.step(_RunLogWarehouse(settings), "transform") as step:  # type: ignore[arg-type]
        started = time.monotonic()
        nodes: list[NodeResult] = []
        success, windowed = True, False
        if not scope.nothing_to_do:
            windowed = _set_test_window(settings, scope.test_window)
            try:
                res = invoke(settings, args)
            finally:
                if windowed:  # a later build, or dbt run by hand, tests every row again
                    _set_test_window(settings, False)
            nodes, success = _node_results(res), bool(res.success)
            if reuse_manifest and hasattr(res.result, "write"):
                res.result.write(str(results_path))
        result = TransformResult(
            run_id=step.run_id, success=success, seconds=time.monotonic() - started, nodes=nodes, scope=scope.reason
        )
        step.details = result.summary() | {
            "tests": "rows added by this build" if scope.test_window and windowed else "all rows",
            "select": select or [],
            "full_refresh": full_refresh,
            "unit_tests": unit_tests,
            "project": scope.project,
            "bronze_marks": scope.marks,
        }
        step.rows_out = result.count("model", "success")
        if not result.success:
            raise BankpipeError(_failure_line(settings, result))
    if scope.nothing_to_do:
        return result
    log.info(
        "transform done in %.1fs: %d models, %d tests, %d unit tests passed%s",
        result.seconds,
        result.count("model", "success"),
        result.count("test", "pass"),
        result.count("unit_test", "pass"),
        f", {len(result.warned)} warning(s)" if result.warned else "",
    )
    return result


def docs_generate(settings: Settings) -> Path:
    """Run `dbt docs generate`; return the folder holding index.html and catalog.json."""
    res = invoke(settings, ["docs", "generate"])
    if not res.success:
        raise BankpipeError("dbt docs generate failed (detail in the dbt log under the state dir)")
    return dbt_state_dir(settings) / "target"


__all__ = [
    "NodeResult",
    "Scope",
    "TransformResult",
    "docs_generate",
    "invoke",
    "plan",
    "profiles",
    "project_dir",
    "run",
    "write_profiles",
]
