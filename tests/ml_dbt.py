"""dbt's own silver views for the ML tests' hand-built warehouses (tests/ml_fixtures.py).

The ML tests build silver's base tables by hand; the views the features read on top of them (the
master-data and fraud-case version histories) are dbt's models, compiled once per test session
and created here — the tests run dbt's definition, not a copy of it.
"""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path

from bankpipe.warehouse import Warehouse

# The dbt models the features read that are views over silver's base relations (and bronze).
VIEWS = ("int_account_versions", "int_customer_versions", "int_fraud_case_versions", "base_transactions_tail")
# The seeds those views read (the currency rules of silver's transaction checks).
SEEDS = ("ref_currencies", "ref_amount_limits")
DBT = Path(__file__).resolve().parents[1] / "dbt"


@functools.cache
def compiled() -> dict[str, str]:
    """`dbt compile` of VIEWS (DuckDB), relation names without the database: name → select statement."""
    from bankpipe import transform
    from bankpipe.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bankpipe-ml-dbt-") as state:
        settings = Settings(state_dir=Path(state), warehouse_path=None)
        res = transform.invoke(settings, ["compile", "--select", *VIEWS])
    out = {}
    for result in res.result.results:
        if result.node.resource_type != "model":  # the models' data tests compile too
            continue
        # "warehouse"."silver"."base_accounts" → silver.base_accounts (the test's file has another name)
        out[result.node.name] = re.sub(r'"[^"]+"\."(\w+)"\."(\w+)"', r"\1.\2", result.node.compiled_code)
    missing = set(VIEWS) - set(out)
    if missing:
        raise RuntimeError(f"dbt compile gave no SQL for {sorted(missing)}")
    return out


@functools.cache
def seed_columns() -> dict[str, str]:
    """Seed name → its column list with the types dbt loads it with (dbt/seeds/_seeds__properties.yml)."""
    import yaml

    props = yaml.safe_load((DBT / "seeds" / "_seeds__properties.yml").read_text())
    types = {s["name"]: s["config"]["column_types"] for s in props["seeds"] if s["name"] in SEEDS}
    return {name: ", ".join(f"{c} {t}" for c, t in cols.items()) for name, cols in types.items()}


def create_views(wh: Warehouse) -> None:
    """Create dbt's SEEDS (from its CSV files) and VIEWS in silver (over the tables the test built)."""
    for name, columns in seed_columns().items():
        wh.execute(f"create or replace table silver.{name} ({columns})")
        wh.execute(
            f"insert into silver.{name} select * from read_csv(?, header = true)", [str(DBT / "seeds" / f"{name}.csv")]
        )
    for name, sql in compiled().items():
        wh.execute(f"create or replace view silver.{name} as {sql}")
