"""Score silver against the generator's ground truth: rejects per planted defect, orphans, anomaly flags.

    bankpipe run --demo            # or: generate + load + ingest + transform yourself
    python bench/quality_vs_truth.py STATE_DIR [GROUND_TRUTH_DIR]

GROUND_TRUTH_DIR defaults to STATE_DIR/demo/ground_truth (where `bankpipe run --demo` writes it).
Prints Markdown tables (precision and recall) for docs/transform.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb


def main() -> None:
    state = Path(sys.argv[1]).resolve()
    truth = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else state / "demo" / "ground_truth"
    con = duckdb.connect()
    con.execute(f"attach '{state / 'warehouse.duckdb'}' as wh (read_only)")
    con.execute(f"create view defects as select * from '{truth / 'defects.parquet'}'")
    con.execute(f"create view truth as select * from '{truth / 'transactions.parquet'}'")

    # A record is planted-bad when a field is missing or malformed; silver must reject exactly those.
    print("### Rejected records vs planted record defects\n")
    print("| planted | field | planted rows | rejected | recall | rules used |\n|---|---|---|---|---|---|")
    for defect, field, planted, hit, rules in con.execute(
        """with planted as (
               select distinct defect, field, record_id from defects
               where defect in ('missing_field', 'malformed_value'))
           select p.defect, p.field, count(distinct p.record_id), count(distinct r.record_key),
                  string_agg(distinct r.rule, ', ' order by r.rule)
           from planted p left join wh.silver.rejected_records r
             on r.entity = 'transaction' and r.record_key = p.record_id
           group by all order by 1, 2"""
    ).fetchall():
        if field == "id":
            # Without an id there is no key to join on: count the rule instead.
            hit = con.execute(
                "select count(*) from wh.silver.rejected_records where rule = 'missing_transaction_id'"
            ).fetchone()[0]
            rules = "missing_transaction_id (matched by count: no key to join on)"
        print(f"| {defect} | {field} | {planted} | {hit} | {hit / planted:.1%} | {rules or '—'} |")
    total_rej, false_rej = con.execute(
        """select count(distinct record_key),
                  count(distinct record_key) filter (where record_key not in (
                      select record_id from defects where defect in ('missing_field', 'malformed_value')))
           from wh.silver.rejected_records
           -- '<missing>' is the key of records without an id, counted against the planted ones above
           where entity = 'transaction' and record_key <> '<missing>'"""
    ).fetchone()
    print(
        f"\nRejected transaction keys: {total_rej}; not planted as defective: {false_rej} "
        f"(precision {(total_rej - false_rej) / max(total_rej, 1):.1%})."
    )

    orph = con.execute(
        """select count(*) filter (where s.is_orphan and t.is_orphan), count(*) filter (where s.is_orphan),
                  count(*) filter (where t.is_orphan)
           from wh.silver.stg_transactions s join truth t on t.transaction_id = s.transaction_id"""
    ).fetchone()
    print(
        f"\nOrphan flag: precision {orph[0] / max(orph[1], 1):.1%}, recall {orph[0] / max(orph[2], 1):.1%} "
        f"({orph[2]} planted orphans among loaded rows)."
    )
    dup = con.execute(
        """select count(*) - count(distinct (_record ->> 'id')) from wh.bronze.raw_transactions"""
    ).fetchone()[0]
    silver_dup = con.execute(
        "select count(*) - count(distinct transaction_id) from wh.silver.stg_transactions"
    ).fetchone()[0]
    print(f"\nDuplicates: {dup} repeated ids in bronze, {silver_dup} left in silver.")

    print("\n### Anomaly flags vs planted fraud (not a model: a flag's precision is its fraud rate)\n")
    print("| flag | flagged | fraud among flagged (precision) | fraud caught (recall) |\n|---|---|---|---|")
    flags = [
        r[0] for r in con.execute("describe wh.silver.int_transaction_anomalies").fetchall() if r[0].startswith("is_")
    ]
    n_fraud = con.execute(
        "select count(*) from truth t join wh.silver.int_transaction_anomalies a using (transaction_id)"
        " where t.is_fraud"
    ).fetchone()[0]
    for flag in flags:
        flagged, tp = con.execute(
            f"""select count(*) filter (where a.{flag}), count(*) filter (where a.{flag} and t.is_fraud)
                from wh.silver.int_transaction_anomalies a join truth t using (transaction_id)"""
        ).fetchone()
        print(f"| {flag} | {flagged} | {tp / max(flagged, 1):.1%} | {tp / max(n_fraud, 1):.1%} |")


if __name__ == "__main__":
    main()
