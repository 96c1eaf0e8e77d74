"""DDL of the source database `source_bank` (the bank's operational master data)."""

from __future__ import annotations

import re
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


# Columns every table carries beyond the seed's, for incremental extraction and for people.
AUDIT_COLUMNS = ["created_at", "updated_at"]

# What each use of the source needs on every table. A reader only selects; the test-data writers
# (`generate --to-postgres`, `source load-files`, the mutator) upsert and delete.
PRIVILEGES: dict[str, tuple[str, ...]] = {
    "read": ("SELECT",),
    "write": ("SELECT", "INSERT", "UPDATE", "DELETE"),
}

# Functions the incremental extract calls (ingest/postgres.py `_snapshot`); PUBLIC may execute them
# by default, a hardened database may have revoked that. Keyed by the first server version using them.
SNAPSHOT_FUNCTIONS: dict[int, tuple[str, ...]] = {
    130000: ("pg_current_snapshot()", "pg_snapshot_xmin(pg_snapshot)", "pg_snapshot_xmax(pg_snapshot)"),
    0: ("txid_current_snapshot()", "txid_snapshot_xmin(txid_snapshot)", "txid_snapshot_xmax(txid_snapshot)"),
}


def ddl_statements() -> list[str]:
    """The statements that create the source schema, in order; each is safe to run again."""
    out = [_TOUCH_FN.strip()]
    for name, cols in TABLES.items():
        out.append(
            f"create table if not exists {name} ({cols},\n"
            "  created_at timestamptz not null default now(),\n"
            "  updated_at timestamptz not null default now())"
        )
        out.append(f"create index if not exists {name}_updated_at_idx on {name} (updated_at, {KEYS[name]})")
        out.append(f"drop trigger if exists {name}_touch on {name}")
        out.append(
            f"create trigger {name}_touch before update on {name} "
            "for each row execute function bankpipe_touch_updated_at()"
        )
    return out


def grant_statements(role: str, schema: str = "public", database: str = "source_bank") -> list[str]:
    """The role and GRANTs a DBA runs once so that `role` can extract, and nothing more (no DDL, no writes)."""
    tables = ", ".join(f"{schema}.{name}" for name in TABLES)
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        database = '"' + database.replace('"', '""') + '"'  # as written in the URL: case and dashes kept
    functions = ", ".join(SNAPSHOT_FUNCTIONS[130000])
    return [
        f"create role {role} login",
        f"grant connect on database {database} to {role}",
        f"grant usage on schema {schema} to {role}",
        f"grant select on {tables} to {role}",
        # PUBLIC holds EXECUTE on these by default; needed only where a DBA revoked it (12: txid_*).
        f"-- grant execute on function {functions} to {role}",
    ]


# One round trip for the whole check: a source across a WAN pays its latency once, not per table.
_CHECK = """
select t.name,
       c.oid is not null,
       (select coalesce(array_agg(a.attname::text), '{}') from pg_attribute a
         where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped),
       (select g.tgenabled::text from pg_trigger g
         where g.tgrelid = c.oid and g.tgname = t.name || '_touch' and not g.tgisinternal),
       array(select p from unnest(%(privileges)s::text[]) p where c.oid is not null
              and not has_table_privilege(c.oid, p)),
       (select n.nspname::text from pg_class h join pg_namespace n on n.oid = h.relnamespace
         where h.relname = t.name and h.relkind in ('r', 'p') and not has_schema_privilege(n.oid, 'USAGE')
         order by n.nspname = 'public' desc limit 1),
       current_user::text,
       array(select f from unnest(%(functions)s::text[]) f where not has_function_privilege(f, 'EXECUTE'))
  from unnest(%(tables)s::text[]) with ordinality t(name, i)
  left join pg_class c on c.oid = to_regclass(t.name)
 order by t.i
"""


def check_schema(conn: psycopg.Connection, use: str = "read") -> list[str]:
    """What is missing for `use` ("read" or "write"): tables, columns, triggers, privileges; [] when ready.

    Catalog reads only (no locks, no DDL), run as the connecting role, in one query.
    """
    functions = SNAPSHOT_FUNCTIONS[130000 if conn.info.server_version >= 130000 else 0]
    rows = conn.execute(
        _CHECK, {"tables": list(COLUMNS), "privileges": list(PRIVILEGES[use]), "functions": list(functions)}
    ).fetchall()
    problems: list[str] = []
    role = rows[0][6]
    for table, found, have, trigger, denied, hidden, _, _ in rows:
        if not found:
            # Present in a schema the role may not use? Say so rather than "missing".
            problems.append(f"role {role} lacks USAGE on schema {hidden}" if hidden else f"missing table {table}")
            continue
        lacking = [c for c in [*COLUMNS[table], *AUDIT_COLUMNS] if c not in have]
        if lacking:
            problems.append(f"table {table} lacks column{'s' if len(lacking) > 1 else ''} {', '.join(lacking)}")
        if trigger is None:
            problems.append(f"trigger {table}_touch missing")
        elif trigger == "D":
            problems.append(f"trigger {table}_touch disabled")
        if denied:
            problems.append(f"role {role} lacks {'/'.join(denied)} on {table}")
    problems += [f"role {role} lacks EXECUTE on function {fn}" for fn in rows[0][7]]
    # Dedupe (a USAGE problem is reported once for all its tables), keeping the order.
    return list(dict.fromkeys(problems))


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
    connect of the embedded source, next to writers and extractors.
    """
    if schema_ready(conn):
        return
    with conn.transaction():
        for statement in ddl_statements():
            conn.execute(statement)
