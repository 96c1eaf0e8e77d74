"""PII by design: clear names and e-mails only in bronze and silver_pii; everywhere else masks and keyed pseudonyms."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from bankpipe import pii, transform
from bankpipe.errors import BankpipeError
from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from tests.dbt_fixtures import bronze

# A customer no generator or seed would produce, so a hit anywhere can only be a leak.
FIRST, LAST, EMAIL = "Zulkarnaen", "Xylophonius", "zx.unique@example.com"
# A customer record silver rejects (no id): its raw_record must be masked the same way.
REJECTED = {"nama_depan": "Quintessa", "nama_belakang": "Wobblebottom", "email": "qw.reject@example.com"}
# Names whose masks are easy to get wrong: several words, one letter, punctuation, extra blanks.
TRICKY = {
    "CUST-7801": ("Siti Nur", "Hal-Abadi", "s@x.id"),
    "CUST-7802": ("A", "O'Neil  Jr", "@nolocal.id"),
    "CUST-7803": ("  Dewi ", None, "no-at-sign"),
}
NEEDLES = [FIRST, LAST, EMAIL, *REJECTED.values()]


@dataclass
class Built:
    settings: Settings
    key: str


def _customer(cid: str | None, first: str | None, last: str | None, email: str | None, segment: str) -> dict:
    return {
        "id": cid,
        "nama_depan": first,
        "nama_belakang": last,
        "email": email,
        "segmen": segment,
        "location_id": "LOC-001",
        "bank_id": "BANK-001",
    }


def query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with connect(settings, read_only=True) as wh:
        return wh.fetchall(sql, params)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Iterator[Built]:
    settings = Settings(state_dir=tmp_path_factory.mktemp("pii") / "state", warehouse_path=None)
    later = bronze.LOADED_AT + timedelta(hours=1)
    with connect(settings) as wh:
        bronze.load_seed_masters(wh, sample_dir)
        bronze.load_seed_transactions(wh, sorted((sample_dir / "stream_source").glob("*.json")))
        # The unique customer, then a segment change (history in dim_customers), then a rejected record.
        bronze.insert_master_version(wh, "raw_customers", _customer("CUST-7777", FIRST, LAST, EMAIL, "Silver"), later)
        bronze.insert_master_version(
            wh, "raw_customers", _customer("CUST-7777", FIRST, LAST, EMAIL, "Gold"), later + timedelta(days=1)
        )
        bronze.insert_master_version(wh, "raw_customers", _customer(None, *REJECTED.values(), "Gold"), later)
        for cid, (first, last, email) in TRICKY.items():
            bronze.insert_master_version(wh, "raw_customers", _customer(cid, first, last, email, "Standard"), later)
    assert transform.run(settings).success
    yield Built(settings, pii.key(settings))


def _text_columns(settings: Settings) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every text column outside bronze (the loader's) and silver_pii."""
    return [
        tuple(r)
        for r in query(
            settings,
            """select c.table_schema, c.table_name, c.column_name
               from information_schema.columns c
               join information_schema.tables t using (table_catalog, table_schema, table_name)
               where c.table_schema not in ('bronze', 'silver_pii', 'information_schema', 'pg_catalog')
                 and (c.data_type in ('VARCHAR', 'JSON') or c.data_type like 'VARCHAR%')""",
        )
    ]


@pytest.mark.integration
@pytest.mark.slow
def test_no_clear_name_or_email_outside_bronze_and_silver_pii(built: Built) -> None:
    columns = _text_columns(built.settings)
    schemas = {s for s, _, _ in columns}
    assert {"silver", "gold", "audit", "ops"} <= schemas
    tables = {(s, t) for s, t, _ in columns}
    assert ("gold", "dim_customers") in tables and ("silver", "rejected_records") in tables
    hits = []
    with connect(built.settings, read_only=True) as wh:
        for schema, table, column in columns:
            for needle in [*NEEDLES, built.key]:
                found = wh.fetchone(
                    f'select count(*) from {schema}.{table} where strpos(lower("{column}"), ?) > 0', [needle.lower()]
                )
                if found and found[0]:
                    hits.append(f"{schema}.{table}.{column} has {needle!r}")
    assert hits == []


@pytest.mark.integration
@pytest.mark.slow
def test_silver_pii_keeps_the_clear_values_and_the_same_pseudonyms(built: Built) -> None:
    rows = query(
        built.settings,
        "select first_name, last_name, full_name, email, name_pseudonym, email_pseudonym"
        " from silver_pii.customers where customer_id = 'CUST-7777'",
    )
    assert rows[0][:4] == (FIRST, LAST, f"{FIRST} {LAST}", EMAIL)
    # keyed SHA-256 of key|value: recomputable with the key only
    expected_name = hashlib.sha256(f"{built.key}|{(FIRST + ' ' + LAST).lower()}".encode()).hexdigest()
    expected_email = hashlib.sha256(f"{built.key}|{EMAIL}".encode()).hexdigest()
    assert rows[0][4:] == (expected_name, expected_email)
    dims = query(
        built.settings,
        "select segment, full_name_masked, email_masked, name_pseudonym, email_pseudonym"
        " from gold.dim_customers where customer_id = 'CUST-7777' order by valid_from",
    )
    assert [d[0] for d in dims] == ["Silver", "Gold"]  # the history survives pseudonymisation
    assert {d[1:] for d in dims} == {("Z***** X*****", "z***@example.com", *rows[0][4:])}
    rfm = "select full_name_masked from gold.mart_customer_rfm where customer_key = 'CUST-7777'"
    assert query(built.settings, rfm) == [("Z***** X*****",)]


@pytest.mark.integration
@pytest.mark.slow
def test_rejected_customer_raw_record_is_masked(built: Built) -> None:
    rows = query(
        built.settings,
        "select rule, raw_record from silver.rejected_records"
        " where entity = 'customer' and rule = 'missing_customer_id'",
    )
    records = [json.loads(r[1]) for r in rows]
    mine = [r for r in records if r["segmen"] == "Gold" and r["email"] == "q***@example.com"]
    assert mine and mine[0]["nama_depan"] == "Q*****" and mine[0]["nama_belakang"] == "W*****"
    # bronze, the loader's, keeps the record as it came
    assert query(built.settings, "select count(*) from bronze.raw_customers where nama_depan = 'Quintessa'") == [(1,)]


@pytest.mark.integration
@pytest.mark.slow
def test_sql_masks_match_the_python_masks(built: Built) -> None:
    rows = query(
        built.settings,
        "select customer_id, first_name_masked, last_name_masked, full_name_masked, email_masked"
        " from silver.stg_customers where customer_id like 'CUST-78%' order by 1",
    )
    got = {r[0]: r[1:] for r in rows}
    for cid, (first, last, email) in TRICKY.items():
        first_c = first.strip() if first else None
        full = " ".join(p for p in (first_c, last) if p)
        assert got[cid] == (pii.mask_name(first_c), pii.mask_name(last), pii.mask_name(full), pii.mask_email(email))
    assert got["CUST-7801"] == ("S***** N*****", "H*****", "S***** N***** H*****", "s***@x.id")
    assert got["CUST-7802"][2:] == ("A***** O*****  J*****", "***")  # blanks kept as they are


@pytest.mark.integration
@pytest.mark.slow
def test_pseudonyms_are_stable_across_a_full_rebuild_and_the_key_stays_out_of_dbt_files(built: Built) -> None:
    sql = "select name_pseudonym, email_pseudonym from silver.stg_customers where customer_id = 'CUST-7777'"
    before = query(built.settings, sql)
    assert transform.run(built.settings, everything=True).success
    assert query(built.settings, sql) == before
    key_file = built.settings.state / pii.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # compiled SQL, manifest, run results and dbt.log hold the subquery, never the key
    leaked = [
        p for p in (built.settings.state / "dbt").rglob("*") if p.is_file() and built.key.encode() in p.read_bytes()
    ]
    assert leaked == []


def test_python_masks() -> None:
    assert pii.mask_name("Gilang Dewanto") == "G***** D*****"
    assert pii.mask_name("G***** D*****") == "G***** D*****"  # idempotent: masking masked data changes nothing
    assert pii.mask_name("  ") is None and pii.mask_name(None) is None
    assert pii.mask_email("gilang.d@example.com") == "g***@example.com"
    assert pii.mask_email("g***@example.com") == "g***@example.com"
    assert pii.mask_email("nobody") == "***"


def test_key_is_generated_once_0600_and_placeholders_are_refused(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    first = pii.key(settings)
    assert len(first) == 64 and pii.key(settings) == first
    assert stat.S_IMODE((settings.state / pii.KEY_FILE).stat().st_mode) == 0o600
    chosen = "0f8a7c6b5d4e3f2a1b0c9d8e7f6a5b4c"
    assert pii.key(settings.model_copy(update={"pii_key": SecretStr(chosen)})) == chosen
    for placeholder in ("changeme", "changeme-changeme-123", "aaaaaaaaaaaaaaaaaaaaaaaa"):
        with pytest.raises(BankpipeError, match="placeholder"):
            pii.key(settings.model_copy(update={"pii_key": SecretStr(placeholder)}))
    with pytest.raises(BankpipeError, match="BANKPIPE_PII_KEY is not set"):
        pii.key(settings.model_copy(update={"warehouse": "snowflake"}))
    (settings.state / pii.KEY_FILE).write_text("\n")  # emptied by hand: refused, not silently replaced
    with pytest.raises(BankpipeError, match=r"key file .*pii\.key looks like a placeholder"):
        pii.key(settings)
