"""The one entry point for people and for Airflow tasks; each command calls a stage function."""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bankpipe.errors import BankpipeError
from bankpipe.logs import console, setup
from bankpipe.redact import redact
from bankpipe.settings import PRIVATE_UMASK, get_settings, secure_state_dir

log = logging.getLogger("bankpipe")

app = typer.Typer(
    help="bankpipe: banking data pipeline (bronze → silver → gold).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
source_app = typer.Typer(help="The source database (embedded unless BANKPIPE_SOURCE_URL is set).", no_args_is_help=True)
ingest_app = typer.Typer(help="Load the sources into bronze.", no_args_is_help=True)
app.add_typer(source_app, name="source")
app.add_typer(ingest_app, name="ingest")
ml_app = typer.Typer(help="Fraud and status models: train, score, report.", no_args_is_help=True)
app.add_typer(ml_app, name="ml")


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug output on the console.")] = False,
) -> None:
    # Everything a command writes (warehouse, spools, quarantine, logs, MLflow database, dbt target/) holds
    # customer data: files 0600 and folders 0700, whatever the shell's umask.
    os.umask(PRIVATE_UMASK)
    settings = get_settings()
    # Before the log file exists (it lives in the state dir), so the line about a loose state dir is kept
    # until logging is set up, then goes to both the console and the file.
    tightened = secure_state_dir(settings.state_dir.expanduser().resolve())
    setup(settings, verbose=verbose)
    if tightened:
        log.warning("%s", tightened)


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a BankpipeError into one red line and exit code 1; the detail goes to the log file."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BankpipeError as exc:
            log.debug("command failed", exc_info=True)
            # Messages quote file names, ids and values from records: printed as text, never as rich markup.
            console.print(f"[red]error:[/red] {escape(redact(str(exc)))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except (KeyboardInterrupt, typer.Exit, typer.BadParameter):
            raise
        except Exception as exc:
            # A bug, not a user error: one line here, the traceback in the log file.
            log.debug("unexpected failure", exc_info=True)
            logfile = get_settings().log_dir / "bankpipe.log"
            text = redact(str(exc)).splitlines()[0] if str(exc) else ""
            console.print(
                f"[red]internal error:[/red] {type(exc).__name__}: {escape(text)}"
                f" (traceback in {escape(str(logfile))})",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2) from None

    return wrapper


# --- ingest -------------------------------------------------------------------------------------


@ingest_app.command("batch")
@command
def ingest_batch(
    full: Annotated[bool, typer.Option("--full", help="Full load: also records rows deleted at the source.")] = False,
    incremental: Annotated[bool, typer.Option("--incremental", help="Only rows past the watermark (default).")] = False,
) -> None:
    """PostgreSQL master data → bronze."""
    from bankpipe.ingest import postgres

    if full and incremental:
        raise typer.BadParameter("choose one of --full and --incremental")
    result = postgres.run(get_settings(), "full" if full else "incremental")
    table = Table("source table", "bronze table", "extracted", "appended", "deleted")
    for t in result.tables:
        table.add_row(t.table, t.bronze_table, str(t.extracted), str(t.appended), str(t.deleted))
    console.print(table)


@ingest_app.command("stream")
@command
def ingest_stream(
    follow: Annotated[bool, typer.Option("--follow", help="Keep watching the landing folder.")] = False,
) -> None:
    """Landing folder (JSON arrays / JSON Lines) → bronze.raw_transactions, exactly once."""
    from bankpipe.ingest import stream

    settings = get_settings()
    if follow:
        from bankpipe.ml import score

        try:
            # Each new file is scored right after it lands; high scores become gold.fraud_alerts.
            stream.follow(settings, on_loaded=score.realtime_hook(settings))
        except KeyboardInterrupt:
            console.print("stopped")
        return
    r = stream.run(settings)
    lines = sum(n for _, n in r.rejected_lines)
    console.print(
        f"{len(r.loaded)} files loaded ({r.rows} records, {lines} lines rejected), {len(r.duplicates)} duplicates"
        f" skipped, {len(r.rejected)} rejected, {len(r.partial)} partial, {len(r.waiting)} still being written,"
        f" {r.unchanged} already loaded — {escape(str(settings.transactions_landing))}",
        highlight=False,
    )
    # File names are data: escaped, so `transaction_[red]x.json` prints as it is named.
    for name, reason in r.rejected:
        console.print(f"[yellow]rejected[/yellow] {escape(name)}: {escape(reason)}", highlight=False, soft_wrap=True)
    for name, detail in r.partial:
        console.print(f"[yellow]partial[/yellow] {escape(name)}: {escape(detail)}", highlight=False, soft_wrap=True)
    for name, n in r.rejected_lines:
        console.print(
            f"[yellow]rejected lines[/yellow] {escape(name)}: {n} (see ops.rejected_lines)",
            highlight=False,
            soft_wrap=True,
        )


@app.command("run")
@command
def run(
    demo: Annotated[
        bool, typer.Option("--demo", help="First generate a demo dataset if source and landing are empty.")
    ] = False,
) -> None:
    """Run the whole pipeline once, in order (the no-Airflow path)."""
    from bankpipe import pipeline
    from bankpipe.logs import StepDisplay, console_level, duration, listening, stderr_to_log

    settings = get_settings()
    # One live line per step instead of every stage's INFO lines (those are in the log file; -v shows them).
    with console_level(logging.WARNING), stderr_to_log(), StepDisplay() as display, listening(display.update):
        try:
            report = pipeline.run(settings, demo=demo, watcher=display)
        except pipeline.StepFailed as exc:
            # Which step stopped the run, in front of its one line (the steps after it did not run).
            raise BankpipeError(f"{exc.step} failed: {exc}") from exc
    summary = Table(
        "step", "rows", "time", title=f"bankpipe run: done in {duration(report.seconds)}", title_justify="left"
    )
    for step in report.steps:
        summary.add_row(step.name, "" if step.rows is None else f"{step.rows:,}", duration(step.seconds))
    console.print(summary)
    console.print(f"warehouse: {escape(settings.warehouse_location)}", highlight=False, soft_wrap=True)
    console.print(
        "where to look: bankpipe status · bankpipe ml report · bankpipe dashboard (http://127.0.0.1:8501)"
        f" · log: {escape(str(settings.log_dir / 'bankpipe.log'))}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("transform")
@command
def transform(
    select: Annotated[list[str] | None, typer.Option("--select", "-s", help="dbt selection.")] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild incremental models from bronze.")
    ] = False,
    unit_tests: Annotated[
        bool,
        typer.Option("--unit-tests", help="Build everything and run the dbt unit tests too (development and CI)."),
    ] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="Build every model, not only what new bronze data reaches.")
    ] = False,
) -> None:
    """dbt build of what new bronze data reaches in silver and gold, with its data tests."""
    from bankpipe import transform as tf

    r = tf.run(get_settings(), select=select, full_refresh=full_refresh, unit_tests=unit_tests, everything=everything)
    if not r.nodes:
        console.print("transform ok: nothing to build", highlight=False)
        return
    units = f", {r.count('unit_test', 'pass')} unit tests" if unit_tests else ""
    models, tests = r.count("model", "success"), r.count("test", "pass")
    console.print(f"transform ok in {r.seconds:.0f}s: {models} models, {tests} tests{units}", highlight=False)


@app.command("docs")
@command
def docs() -> None:
    """Generate the dbt documentation site (catalog + manifest) under the state dir."""
    from bankpipe import transform as tf

    console.print(Text(f"dbt docs written to {tf.docs_generate(get_settings())}"), highlight=False)


@ml_app.command("train")
@command
def ml_train(target: Annotated[str, typer.Option("--target", help="fraud or status")] = "fraud") -> None:
    """Train LR (vs tree and rules), register it, promote it if it beats the champion."""
    from bankpipe.ml import train

    if target not in ("fraud", "status"):
        raise typer.BadParameter("--target must be fraud or status")
    for line in train.run(get_settings(), target).headline():
        console.print(Text(line), highlight=False)


@ml_app.command("score")
@command
def ml_score(
    rescore: Annotated[
        bool,
        typer.Option(
            "--rescore",
            help="First re-score the transactions scored by a model version that is no longer the champion,"
            " adding the champion's rows beside the served ones (gold.ml_transaction_scores keeps every score;"
            " gold.ml_current_scores shows the current one).",
        ),
    ] = False,
    rescore_all: Annotated[
        bool,
        typer.Option(
            "--rescore-all",
            help="First re-score every scored transaction, the champion's own rows too (e.g. after late master"
            " data), adding rows likewise.",
        ),
    ] = False,
) -> None:
    """Score every unscored transaction with the champions (--rescore: earlier versions' too); refresh monitoring."""
    from bankpipe.ml import monitor, score

    settings = get_settings()
    mode = "all" if rescore_all else "stale" if rescore else None
    console.print(Text(score.run(settings, rescore=mode).line()), highlight=False)
    monitor.run(settings)


@ml_app.command("report")
@command
def ml_report(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the registered versions, metrics and intervals as one JSON object.")
    ] = False,
) -> None:
    """Write the model report (Markdown + HTML with plots) and print the headline numbers."""
    import json

    from bankpipe.ml import report

    if as_json:
        # Read from the registry's tags only: no report files written, nothing else on stdout.
        typer.echo(json.dumps(report.report_json(get_settings()), default=str, indent=2))
        return
    r = report.run(get_settings())
    for line in r.headline:
        console.print(Text(line), highlight=False)
    console.print(Text(f"report: {r.html}"), highlight=False)


@ml_app.command("history")
@command
def ml_history(transaction_id: Annotated[str, typer.Argument(help="The transaction's id, e.g. TRX-000001.")]) -> None:
    """Every score a transaction got: version, score, label, when and how, and which one is current."""
    from rich.table import Table

    from bankpipe.ml import score

    rows = score.history(get_settings(), transaction_id)
    if not rows:
        console.print(Text(f"no score for {transaction_id}"), highlight=False)
        return
    table = Table("model", "version", "score", "label", "scored at", "by", "current", "served", "alert")
    for r in rows:
        table.add_row(
            str(r["model_name"]),
            str(r["model_version"]),
            f"{r['score']:.4f}" if r["score"] is not None else "",
            str(r["label"] or ""),
            str(r["scored_at"]),
            str(r["scored_by"]),
            "yes" if r["is_current"] else "",
            "yes" if r["is_served"] else "",
            "yes" if r["alerted"] else "",
        )
    console.print(table)


@app.command("dashboard")
@command
def dashboard(
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8501,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to bind; anything but loopback needs BANKPIPE_DASHBOARD_AUTH=oidc (sign-in)."
        ),
    ] = "127.0.0.1",
) -> None:
    """Serve the Streamlit dashboard over gold on http://HOST:PORT, 127.0.0.1 by default (Ctrl-C stops it)."""
    from bankpipe.dashboard import serve
    from bankpipe.dashboard.auth import check_bind, check_oidc_config

    settings = get_settings()
    check_bind(host, settings.dashboard_auth)  # before printing a URL that must not be served
    if settings.dashboard_auth == "oidc":
        check_oidc_config()
    console.print(
        Text(f"dashboard: http://{host}:{port}  (sign-in: {settings.dashboard_auth}; Ctrl-C to stop)"),
        highlight=False,
    )
    serve(settings, port, host)


@app.command("status")
@command
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Rows per layer, freshness per source, rejected files, last runs."""
    import json

    from bankpipe import ops
    from bankpipe.warehouse import connect

    settings = get_settings()
    if not settings.warehouse_file.exists() and settings.warehouse == "duckdb":
        raise BankpipeError(f"no warehouse at {settings.warehouse_file} yet (run: bankpipe run)")
    with connect(settings, read_only=True) as wh:
        st = ops.status(wh)
    if as_json:
        typer.echo(json.dumps(st, default=str, indent=2))
        return
    rows = Table("table", "rows")
    for name, n in st["tables"].items():
        rows.add_row(name, f"{n:,}")
    console.print(rows)
    fresh = Table("source", "last loaded (UTC)", "age (h)")
    for name, info in st["sources"].items():
        fresh.add_row(
            name,
            str(info["last_loaded_at"] or "never"),
            str(info["age_hours"] if info["age_hours"] is not None else "-"),
        )
    console.print(fresh)
    console.print(f"rejected files: {st['rejected_files']}")
    # File names and reasons are data: Text cells, never read as rich markup.
    if st["rejected_files_latest"]:
        latest = Table("rejected file", "reason", "quarantined to", "at (UTC)", title="latest rejected files")
        for r in st["rejected_files_latest"]:
            latest.add_row(
                Text(r["file_name"]), Text(r["reason"]), Text(r["quarantine_path"] or "left in place"), r["rejected_at"]
            )
        console.print(latest)
    if st["partial_files"]:
        partial = Table(
            "partial file", "where it broke", title="partial files (not loaded; waiting for the complete file)"
        )
        for r in st["partial_files"]:
            partial.add_row(Text(r["file_name"]), Text(r["detail"] or ""))
        console.print(partial)
    console.print(f"rejected lines (JSON Lines, in ops.rejected_lines): {st['rejected_lines']}")
    if st["rejected_lines_by_file"]:
        by_file = Table("file", "lines rejected", "first line", "first reason")
        for r in st["rejected_lines_by_file"]:
            by_file.add_row(Text(r["file_name"]), str(r["lines"]), str(r["first_line"]), Text(r["first_reason"]))
        console.print(by_file)
    for key, column, title in (
        ("rejected_records", "rule", "records rejected by silver (silver.rejected_records)"),
        ("flagged_records", "flag", "records kept but flagged (silver.flagged_records)"),
    ):
        if st[key]:
            verdicts = Table("entity", column, "records", title=title)
            for r in st[key]:
                verdicts.add_row(r["entity"], r[column], f"{r['records']:,}")
            console.print(verdicts)
    runs = Table("step", "started", "status", "rows in", "rows out", "error")
    for r in st["last_runs"]:
        # An error quotes what failed (a file name, a value, a server's message): a Text cell, not markup.
        runs.add_row(
            Text(r["step"]),
            f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
            Text(r["status"]),
            str(r["rows_in"]),
            str(r["rows_out"]),
            Text(r["error"] or ""),
        )
    console.print(runs)


@ingest_app.command("fx")
@command
def ingest_fx(
    start: Annotated[
        datetime | None, typer.Option("--start", formats=["%Y-%m-%d"], help="First day (default: incremental).")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option("--end", formats=["%Y-%m-%d"], help="Last day (default: today).")
    ] = None,
) -> None:
    """FX API (or the offline ECB snapshot) → bronze.raw_exchange_rates."""
    from bankpipe.ingest import fx

    r = fx.run(get_settings(), start.date() if start else None, end.date() if end else None)
    console.print(
        Text(f"{r.inserted} new rates ({r.fetched} fetched) for USD→{', '.join(r.quotes)} from {r.source}"),
        highlight=False,
    )


# --- source -------------------------------------------------------------------------------------


@source_app.command("up")
@command
def source_up() -> None:
    """Start the embedded source database (no-op for an external BANKPIPE_SOURCE_URL)."""
    from bankpipe.source.db import connect, redact, source_conninfo

    settings = get_settings()
    with connect(settings):
        pass
    console.print(Text(f"source database up: {redact(source_conninfo(settings))}"), highlight=False)


@source_app.command("down")
@command
def source_down() -> None:
    """Stop the embedded source database."""
    from bankpipe.source import embedded

    settings = get_settings()
    if settings.source_url is not None:
        console.print("BANKPIPE_SOURCE_URL is set: the source is external, nothing to stop")
        return
    was = embedded.stop(settings.pgdata)
    console.print("embedded source database stopped" if was else "embedded source database was not running")


@source_app.command("status")
@command
def source_status() -> None:
    """Say which source database is in use and whether it is up."""
    from bankpipe.source import embedded
    from bankpipe.source.db import redact

    settings = get_settings()
    if settings.source_url is not None:
        console.print(Text(f"external source: {redact(settings.source_url.get_secret_value())}"), highlight=False)
        return
    st = embedded.status(settings.pgdata)
    if st.running:
        console.print(f"embedded source running (pid {st.pid}) in {st.pgdata}", highlight=False)
    else:
        console.print(f"embedded source not running (data dir {st.pgdata})", highlight=False)
        raise typer.Exit(3)


@source_app.command("url")
@command
def source_url() -> None:
    """Print the source database's connection string (password masked)."""
    from bankpipe.source.db import redact, source_conninfo

    typer.echo(redact(source_conninfo(get_settings())))


@source_app.command("ddl")
@command
def source_ddl(
    role: Annotated[str, typer.Option("--role", help="The login role bankpipe extracts as.")] = "bankpipe_reader",
    schema: Annotated[str, typer.Option("--schema", help="The schema holding the source tables.")] = "public",
) -> None:
    """Print the schema DDL and the reader's GRANTs, for a DBA to run once on an external source."""
    from psycopg.conninfo import conninfo_to_dict

    from bankpipe.source.schema import ddl_statements, grant_statements

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", role) or not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise BankpipeError("--role and --schema must be plain lower-case SQL names (letters, digits, _)")
    settings = get_settings()
    database = settings.source_database
    if settings.source_url is not None:
        database = conninfo_to_dict(settings.source_url.get_secret_value()).get("dbname") or database
    lines = [
        "-- bankpipe source schema: run once as the tables' owner (bankpipe never runs DDL on an external source)",
        f"set search_path to {schema};",
        *(f"{st};" for st in ddl_statements()),
        f"-- the reader: extracts only (SELECT; the snapshot functions are PUBLIC by default); set its password"
        f" with \\password {role}",
        *(st if st.startswith("--") else f"{st};" for st in grant_statements(role, schema, database)),
    ]
    typer.echo("\n".join(lines))


@source_app.command("load-files")
@command
def source_load_files(directory: Annotated[Path, typer.Argument(help="Folder with the seed's batch files.")]) -> None:
    """Load location.txt, bank_info.txt, customer.csv, account.json (and fraud_case.csv) into the source."""
    from bankpipe.source.db import connect
    from bankpipe.source.load import find_batch_files, load_files

    find_batch_files(directory)  # fail on a wrong folder before starting a database
    with connect(get_settings(), use="write") as conn:
        results = load_files(conn, directory)
    table = Table("table", "file", "rows", "new", "changed")
    for r in results:
        table.add_row(r.table, Text(r.file.name), str(r.rows), str(r.inserted), str(r.updated))  # a file name: text
    console.print(table)


from bankpipe.generate.command import generate_command  # noqa: E402

app.command("generate")(command(generate_command))
