"""`bankpipe generate`: the CLI face of generate(), follow() and mutate()."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bankpipe.errors import BankpipeError
from bankpipe.generate.config import EXTENSIONS, DefectConfig, FraudConfig, GenerateConfig, GenerateConfigError
from bankpipe.logs import console
from bankpipe.settings import get_settings

if TYPE_CHECKING:
    from bankpipe.generate.core import GenerateSummary


def _extensions(value: str) -> tuple[str, ...]:
    if value.strip().lower() in ("", "none"):
        return ()
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise GenerateConfigError(f"--start-date {value!r} is not a date in YYYY-MM-DD form") from None


class Profile(StrEnum):
    """Which simulator writes the data: the bank's own, or the Fraud Detection Handbook's (chapter 3)."""

    bank = "bank"
    handbook = "handbook"


# Options of the bank profile that have no meaning for the handbook's simulator (it has no account
# mix, no transaction budget, no fraud rate, no foreign currencies, no defects, no follow/mutate).
BANK_ONLY = (
    "accounts_per_customer",
    "transactions",
    "fraud_rate",
    "foreign_share",
    "extensions",
    "defects",
    "follow",
    "interval",
    "max_files",
    "mutate",
)
# Defaults per profile of the options both share (None on the command line means "the profile's").
BANK_DEFAULTS = {"customers": 1_000, "days": 30, "start_date": "2025-12-01"}


def _given(ctx: typer.Context, name: str) -> bool:
    # By name: typer may carry its own copy of click, whose ParameterSource is another class.
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _already_generated(config: GenerateConfig) -> bool:
    """Whether <out> holds a complete run with exactly these settings (then --follow need not redo it)."""
    summary = config.truth_dir / "summary.json"
    if not summary.is_file() or not (config.batch_dir / "account.json").is_file():
        return False
    try:
        settings = json.loads(summary.read_text())["settings"]
    except (ValueError, KeyError):
        return False
    wanted = config.to_dict()
    return all(settings.get(k) == v for k, v in wanted.items() if k not in ("out", "stream_out", "clean"))


def _print_summary(summary: GenerateSummary) -> None:
    table = Table("what", "count", title="generated", title_justify="left")
    for key in (
        "customers",
        "accounts",
        "locations",
        "banks",
        "transactions",
        "records_written",
        "stream_files",
        "fraud_transactions",
        "fraud_cases",
    ):
        table.add_row(key.replace("_", " "), f"{getattr(summary, key):,}")
    for key, value in summary.defects.items():
        table.add_row(f"defect: {key}", f"{value:,}")
    console.print(table)


def _with_progress(run: Callable[[Callable[[str, int, int], None]], GenerateSummary]) -> GenerateSummary:
    columns = (TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        return run(progress)


def _report(summary: GenerateSummary) -> None:
    _print_summary(summary)
    console.print(
        f"batch files in {summary.batch_dir}, stream files in {summary.stream_dir}, "
        f"ground truth in {summary.truth_dir} ({summary.seconds:.1f} s)",
        highlight=False,
    )


def _to_postgres(batch_dir: Path) -> None:
    from bankpipe.source import connect
    from bankpipe.source.load import load_files

    with connect(get_settings(), use="write") as conn:
        results = load_files(conn, batch_dir)
    table = Table("table", "rows", "new", "changed", title="loaded into the source database", title_justify="left")
    for r in results:
        table.add_row(r.table, f"{r.rows:,}", f"{r.inserted:,}", f"{r.updated:,}")
    console.print(table)


def _handbook(
    ctx: typer.Context,
    *,
    customers: int | None,
    terminals: int | None,
    days: int | None,
    start_date: str | None,
    seed: int,
    out: Path,
    stream_out: Path | None,
    stream_files: int | None,
    records_per_file: int | None,
    clean: bool,
    to_postgres: bool,
) -> None:
    from bankpipe.generate import handbook

    given = [_flag(name) for name in BANK_ONLY if _given(ctx, name)]
    if given:
        raise BankpipeError(f"not for --profile handbook: {', '.join(given)} (see `bankpipe generate --help`)")
    defaults = handbook.HandbookConfig()
    config = handbook.HandbookConfig(
        customers=defaults.customers if customers is None else customers,
        terminals=defaults.terminals if terminals is None else terminals,
        days=defaults.days if days is None else days,
        start_date=defaults.start_date if start_date is None else _date(start_date),
        seed=seed,
        out=out,
        stream_out=stream_out,
        stream_files=stream_files,
        records_per_file=records_per_file,
        clean=clean,
    )
    _report(_with_progress(lambda progress: handbook.generate(config, progress)))
    if to_postgres:
        _to_postgres(config.batch_dir)


def generate_command(
    ctx: typer.Context,
    profile: Annotated[
        Profile,
        typer.Option(
            help="bank: bankpipe's own simulator. handbook: the Fraud Detection Handbook's (chapter 3; defaults "
            "5,000 customers, 10,000 terminals, 183 days from 2018-04-01); it takes --customers, --terminals, "
            "--days, --start-date, --seed, --out, --stream-out, --stream-files, --records-per-file, --clean and "
            "--to-postgres, and none of the bank profile's other options.",
            case_sensitive=False,
        ),
    ] = Profile.bank,
    customers: Annotated[
        int | None, typer.Option(help="Number of customers (default 1000; handbook 5000 card holders).", min=1)
    ] = None,
    terminals: Annotated[
        int | None, typer.Option(help="Handbook profile only: number of terminals (default 10000).", min=1)
    ] = None,
    accounts_per_customer: Annotated[
        int, typer.Option(help="Maximum accounts per customer (1..N each).", min=1, max=10)
    ] = 3,
    transactions: Annotated[int, typer.Option(help="Number of transactions over the period.", min=0)] = 50_000,
    days: Annotated[
        int | None, typer.Option(help="Length of the period in days (default 30; handbook 183).", min=1)
    ] = None,
    start_date: Annotated[
        str | None, typer.Option(help="First day of the period, YYYY-MM-DD (default 2025-12-01; handbook 2018-04-01).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives byte-identical output.")] = 42,
    out: Annotated[Path, typer.Option(help="Output folder (batch_source/, stream_source/, ground_truth/).")] = Path(
        "generated"
    ),
    stream_out: Annotated[
        Path | None,
        typer.Option(help="Write stream files here instead of <out>/stream_source (e.g. the landing folder)."),
    ] = None,
    stream_files: Annotated[
        int | None, typer.Option(help="Number of stream files to spread the transactions over.", min=1)
    ] = None,
    records_per_file: Annotated[
        int | None, typer.Option(help="Records per stream file (overrides --stream-files).", min=1)
    ] = None,
    fraud_rate: Annotated[
        float, typer.Option(help="Share of fraudulent transactions.", min=0.0, max=0.2)
    ] = FraudConfig.rate,
    foreign_share: Annotated[
        float, typer.Option(help="Share of foreign-currency transactions.", min=0.0, max=1.0)
    ] = 0.04,
    extensions: Annotated[
        str,
        typer.Option(
            help=f"Extension fields of stream records, comma-separated ({', '.join(EXTENSIONS)}); "
            "'none' writes exactly seed-shaped records."
        ),
    ] = ",".join(EXTENSIONS),
    defects: Annotated[
        bool, typer.Option("--defects/--no-defects", help="Plant data defects in the stream files.")
    ] = True,
    clean: Annotated[bool, typer.Option(help="Delete earlier generated files in the output folders first.")] = False,
    to_postgres: Annotated[
        bool, typer.Option("--to-postgres", help="Load the batch files into the source database.")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="Then keep writing stream files until Ctrl-C or --max-files.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between files with --follow.", min=0.0)] = 5.0,
    max_files: Annotated[int | None, typer.Option(help="Stop --follow after this many files.", min=1)] = None,
    mutate: Annotated[
        bool, typer.Option("--mutate", help="Only apply one day of changes to the source database's master data.")
    ] = False,
) -> None:
    """Synthetic bank data in the seed formats, with planted fraud and defects and a separate ground truth."""
    from bankpipe.generate.core import generate
    from bankpipe.generate.follower import follow as follow_files
    from bankpipe.generate.mutator import mutate as mutate_source

    if profile is Profile.handbook:
        _handbook(
            ctx,
            customers=customers,
            terminals=terminals,
            days=days,
            start_date=start_date,
            seed=seed,
            out=out,
            stream_out=stream_out,
            stream_files=stream_files,
            records_per_file=records_per_file,
            clean=clean,
            to_postgres=to_postgres,
        )
        return
    if terminals is not None:
        raise BankpipeError("--terminals applies to --profile handbook only")
    customers = BANK_DEFAULTS["customers"] if customers is None else customers
    days = BANK_DEFAULTS["days"] if days is None else days
    start_date = BANK_DEFAULTS["start_date"] if start_date is None else start_date
    settings = get_settings()
    if mutate:
        if follow or to_postgres:
            raise BankpipeError("--mutate changes the source database only; run it without --follow/--to-postgres")
        result = mutate_source(settings, seed, out)
        table = Table(
            "table", "inserted", "updated", "deleted", title=f"mutation day {result.day}", title_justify="left"
        )
        for name, c in result.counts().items():
            table.add_row(name, str(c["inserted"]), str(c["updated"]), str(c["deleted"]))
        console.print(table)
        console.print(f"changed keys written to {result.path}", highlight=False)
        return

    config = GenerateConfig(
        customers=customers,
        accounts_per_customer=accounts_per_customer,
        transactions=transactions,
        days=days,
        start_date=_date(start_date),
        seed=seed,
        out=out,
        stream_out=stream_out,
        records_per_file=records_per_file,
        stream_files=stream_files,
        foreign_currency_share=foreign_share,
        extensions=_extensions(extensions),
        fraud=FraudConfig(rate=fraud_rate),
        defects=DefectConfig() if defects else DefectConfig.none(),
        clean=clean,
    )
    if follow and _already_generated(config):
        console.print(f"{config.out} already holds this dataset; following on", highlight=False)
    else:
        _report(_with_progress(lambda progress: generate(config, progress)))

    if to_postgres:
        _to_postgres(config.batch_dir)

    if follow:
        console.print(
            f"following: a file every {interval:g} s into {config.stream_dir} (Ctrl-C stops)", highlight=False
        )
        result = follow_files(
            config,
            interval_s=interval,
            max_files=max_files,
            on_file=lambda name, n: console.print(f"  {name} ({n} records)", highlight=False),
        )
        console.print(
            f"wrote {len(result.files)} files, {result.records:,} records; clock at {result.clock}", highlight=False
        )
