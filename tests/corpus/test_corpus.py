"""The bad-input corpus end to end: valid rows land exactly once, invalid ones are kept with a reason.

One module-scoped run (a real PostgreSQL source, a real DuckDB warehouse, one dbt build) serves
every case; see tests/corpus/cases.py for the inputs and docs/reliability.md for the table.
"""

from __future__ import annotations

import pytest

from tests.corpus.cases import SECRET_ID, Case, build
from tests.corpus.run import MASTERS, REPLACED, Observed, corpus_settings, land_and_build

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CASES = build()


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Observed:
    from tests.conftest import fresh_database

    with fresh_database() as url, corpus_settings(tmp_path_factory.mktemp("corpus"), url) as settings:
        return land_and_build(settings)


def test_the_build_passes_whatever_landed(observed: Observed) -> None:
    assert observed.transform_ok, observed.status.get("transform_error")


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_valid_records_reach_gold_exactly_once(observed: Observed, case: Case) -> None:
    prefix = f"TRX-{case.number:02d}"
    in_gold = {tid: n for tid, n in observed.gold.items() if tid.startswith(prefix)}
    assert in_gold == dict.fromkeys(case.valid, 1), f"{case.kind}: gold holds {in_gold}"
    in_silver = {tid: n for tid, n in observed.silver.items() if tid.startswith(prefix)}
    assert in_silver == dict.fromkeys(case.valid, 1), f"{case.kind}: silver holds {in_silver}"
    assert not (case.valid & observed.gold_usd_missing), f"{case.kind}: no USD value for {case.valid}"


@pytest.mark.parametrize("case", [c for c in CASES if c.amounts], ids=lambda c: c.kind)
def test_amounts_are_read_as_written(observed: Observed, case: Case) -> None:
    assert {t: observed.amounts.get(t) for t in case.amounts} == case.amounts


@pytest.mark.parametrize("case", [c for c in CASES if c.rejected], ids=lambda c: c.kind)
def test_invalid_records_are_kept_with_their_rule(observed: Observed, case: Case) -> None:
    for tid, rule in case.rejected.items():
        assert rule in observed.rejected.get(tid, set()), (
            f"{case.kind}: {tid} kept under {observed.rejected.get(tid)}, expected {rule}"
        )


@pytest.mark.parametrize("case", [c for c in CASES if c.file_status], ids=lambda c: c.kind)
def test_the_ledger_tells_the_truth_about_each_file(observed: Observed, case: Case) -> None:
    for name, expected in case.file_status.items():
        if expected == "waiting":
            assert name not in observed.ledger_while_writing, f"{name} was read while still being written"
            assert observed.ledger.get(name, ("",))[0] == "loaded", f"{name} never loaded once complete"
            continue
        status, reason = observed.ledger.get(name, (None, None))
        if expected == "refused":
            assert status == "rejected" and reason, f"{case.kind}: {name} -> {status} {reason}"
        else:
            assert status == expected, f"{case.kind}: {name} is {status} ({reason}), expected {expected}"


@pytest.mark.parametrize("case", [c for c in CASES if c.bad_lines], ids=lambda c: c.kind)
def test_bad_lines_are_kept_with_their_number_and_the_parsers_message(observed: Observed, case: Case) -> None:
    for name, numbers in case.bad_lines.items():
        kept = [(n, reason) for f, n, reason in observed.bad_lines if f == name]
        assert [n for n, _ in kept] == numbers, f"{case.kind}: {name} kept lines {kept}"
        assert all(reason for _, reason in kept)


def test_a_symlink_never_pulls_outside_data_into_bronze(observed: Observed) -> None:
    assert SECRET_ID not in observed.bronze_ids


def test_a_missing_id_is_kept_as_a_reject(observed: Observed) -> None:
    assert "missing_transaction_id" in observed.rejected.get("<missing>", set())


def test_a_same_named_file_with_new_content_loads_again_without_duplicates(observed: Observed) -> None:
    assert observed.replaced_versions == 2
    assert observed.ledger[REPLACED][0] == "loaded"
    assert observed.silver.get("TRX-990001") == 1 and observed.silver.get("TRX-990002") == 1


@pytest.mark.parametrize("key", sorted(MASTERS))
def test_a_new_enumeration_value_keeps_the_master_row(observed: Observed, key: str) -> None:
    row = observed.masters.get(key)
    assert row, f"{key} with a new enumeration value did not reach gold"
    flags = [k for k, v in row.items() if k.startswith(("is_unknown", "has_unknown")) and v]
    assert flags, f"{key} reached gold without a flag: {row}"


def test_status_reports_every_kind_of_verdict(observed: Observed) -> None:
    st = observed.status
    assert st["rejected_files"] >= 4  # empty file, symlink, FIFO, directory
    assert {r["file_name"] for r in st["partial_files"]} >= {"transaction_20251224_100001.json"}
    assert st["rejected_lines"] == sum(len(c.bad_lines.get(f, [])) for c in CASES for f in c.files)
    rules = {(r["entity"], r["rule"]) for r in st["rejected_records"]}
    expected = {("transaction", rule) for c in CASES for rule in c.rejected.values()}
    assert expected <= rules, expected - rules
    flags = {r["flag"] for r in st["flagged_records"]}
    assert {"unknown_segment", "unknown_account_type", "unknown_bank_type"} <= flags
