"""Run the bad-input corpus and print the docs/reliability.md table from what actually happened.

    python -m tests.corpus            # PostgreSQL: BANKPIPE_TEST_PG_URL, else 127.0.0.1:5432, else an embedded server

Each row: the kind, an example, where its records and files ended, and the reason bankpipe shows.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.corpus.cases import Case
from tests.corpus.run import REPLACED, Observed, corpus_settings, land_and_build


def _where(case: Case, obs: Observed) -> tuple[str, str]:
    prefix = f"TRX-{case.number:02d}"
    ends: list[str] = []
    reasons: list[str] = []
    gold = sorted(t for t in obs.gold if t.startswith(prefix))
    if gold:
        ends.append(f"{len(gold)} record(s) in gold")
    rules = sorted({r for t, rs in obs.rejected.items() if t.startswith(prefix) for r in rs})
    if rules:
        ends.append("silver.rejected_records")
        reasons += [f"rule `{r}`" for r in rules]
    for name in case.files | case.file_status:
        status, reason = obs.ledger.get(name, ("not recorded", None))
        if case.late and name not in obs.ledger_while_writing:
            ends.append("waited for, then loaded" if status == "loaded" else f"waiting, then {status}")
            reasons.append("file younger than the settle time")
            continue
        if status == "rejected" and reason and "quarantine" not in reason:
            ends.append("ops.rejected_files")
        elif status == "loaded":
            continue
        else:
            ends.append(f"ops.ingested_files `{status}`" if status != "rejected" else "ops.rejected_files")
        if reason:
            reasons.append(reason.replace("|", "\\|").splitlines()[0][:110])
    for name, line, reason in obs.bad_lines:
        if name in case.files:
            ends.append("ops.rejected_lines")
            reasons.append(f"line {line}: {reason.splitlines()[0][:90]}")
    if not ends:
        ends.append("loaded (nothing rejected)")
    return "; ".join(dict.fromkeys(ends)), "; ".join(dict.fromkeys(reasons)) or "—"


def table(obs: Observed) -> str:
    rows = ["| # | kind | example | where it ends | reason shown |", "|---|---|---|---|---|"]
    for c in obs.cases:
        where, reason = _where(c, obs)
        example = c.example.replace("|", "\\|")
        rows.append(f"| {c.number} | {c.kind} | {example} | {where} | {reason} |")
    n = len(obs.cases)
    versions = f"version {obs.replaced_versions} loaded; its records in silver once each"
    example = f"`{REPLACED}` re-sent with one more record"
    rows.append(f"| {n + 1} | same-named file with new content | {example} | {versions} | — |")
    for i, (key, row) in enumerate(sorted(obs.masters.items()), start=n + 2):
        flags = ", ".join(f"`{k}`" for k, v in row.items() if k.startswith(("is_unknown", "has_unknown")) and v)
        where = f"kept in gold with {flags}; silver.flagged_records" if row else "not in gold"
        rows.append(f"| {i} | new enumeration value in master data | {key} ({_NEW_VALUE[key]}) | {where} | warn test |")
    return "\n".join(rows)


_NEW_VALUE = {"CUST-0099": "segmen `Diamond`", "ACC-00099": "tipe_akun `Giro`", "BANK-099": "jenis_bank `BPD`"}


def main() -> int:
    from tests.conftest import fresh_database

    with (
        tempfile.TemporaryDirectory(prefix="bankpipe-corpus-") as tmp,
        fresh_database() as url,
        corpus_settings(Path(tmp) / "state", url) as settings,
    ):
        obs = land_and_build(settings)
    print(table(obs))
    if not obs.transform_ok:
        print(f"\ntransform failed: {obs.status.get('transform_error')}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
