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

# The dbt models the features read that are views over silver's base relations.
VIEWS = ("int_account_versions", "int_customer_versions", "int_fraud_case_versions")


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


def create_views(wh: Warehouse) -> None:
    """Create dbt's VIEWS in the warehouse's silver schema (over the tables the test built)."""
    for name, sql in compiled().items():
        wh.execute(f"create or replace view silver.{name} as {sql}")
