"""DDL of the source database `source_bank` (the bank's operational master data)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

# Seed columns exactly as in shared/seed-dataset, plus created_at/updated_at for incremental
# extraction. No foreign keys: a bank's source systems are not that tidy, and the pipeline must
# see (and flag) what they let through rather than have the loader refuse it.
TABLES: dict[str, str] = {
    "location": """
        id          text primary key,
        kota        text,
        provinsi    text""",
    "bank_info": """
        bank_id      text primary key,
        nama_bank    text,
        singkatan    text,
        kantor_pusat text,
        jenis_bank   text""",
    "customer": """
        id            text primary key,
        nama_depan    text,
        nama_belakang text,
        email         text,
        segmen        text,
        location_id   text,
        bank_id       text""",
    "account": """
        id          text primary key,
        customer_id text,
        tipe_akun   text,
        saldo       numeric(18, 2)""",
    # The bank's case-management system: labels arrive days after the transaction.
    "fraud_case": """
        transaction_id  text primary key,
        confirmed_fraud boolean not null,
        reported_at     timestamptz not null""",
}

# Primary key column per table (bank_info and fraud_case do not call theirs `id`).
KEYS: dict[str, str] = {
    "location": "id",
    "bank_info": "bank_id",
    "customer": "id",
    "account": "id",
    "fraud_case": "transaction_id",
}

# Seed columns per table in seed order (what the files carry and what bronze keeps).
COLUMNS: dict[str, list[str]] = {
    name: [line.split()[0] for line in ddl.strip().splitlines()] for name, ddl in TABLES.items()
}

_TOUCH_FN = """
create or replace function bankpipe_touch_updated_at() returns trigger language plpgsql as $$
begin
  -- Any writer (the generator, an application, a DBA by hand) bumps the watermark column, so
  -- incremental extraction never depends on the writer's discipline.
  if row(new.*) is distinct from row(old.*) then
    new.updated_at := now();
  end if;
  return new;
end $$;
"""


def schema_ready(conn: psycopg.Connection) -> bool:
    """Whether every source table and its trigger exist (a cheap catalog read, no locks)."""
    row = conn.execute(
        "select count(*) from pg_trigger where tgname = any(%s) and not tgisinternal",
        ([f"{name}_touch" for name in TABLES],),
    ).fetchone()
    return row is not None and row[0] == len(TABLES)


def create_schema(conn: psycopg.Connection) -> None:
    """Create the source tables, indexes and the updated_at trigger; safe to run again.

    Does nothing when the schema is complete: DDL takes exclusive locks, and this runs on every
    connect, next to writers and extractors.
    """
    if schema_ready(conn):
        return
    with conn.transaction():
        conn.execute(_TOUCH_FN)
        for name, cols in TABLES.items():
            conn.execute(
                f"create table if not exists {name} ({cols},\n"
                "  created_at timestamptz not null default now(),\n"
                "  updated_at timestamptz not null default now())"
            )
            key = KEYS[name]
            conn.execute(f"create index if not exists {name}_updated_at_idx on {name} (updated_at, {key})")
            conn.execute(f"drop trigger if exists {name}_touch on {name}")
            conn.execute(
                f"create trigger {name}_touch before update on {name} "
                "for each row execute function bankpipe_touch_updated_at()"
            )
