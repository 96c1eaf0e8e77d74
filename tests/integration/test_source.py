"""The source database: schema, batch files in the seed's formats, embedded server lifecycle."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from bankpipe.cli import app
from bankpipe.errors import InputFileError
from bankpipe.settings import get_settings
from bankpipe.source.db import connect
from bankpipe.source.load import load_files

pytestmark = pytest.mark.integration


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    return {
        t: conn.execute(f"select count(*) from {t}").fetchone()[0]
        for t in ("location", "bank_info", "customer", "account", "fraud_case")
    }


def test_sample_batch_files_load_unchanged_and_reload_is_a_no_op(settings, sample_dir):
    with connect(settings) as conn:
        first = {r.table: (r.rows, r.inserted, r.updated) for r in load_files(conn, sample_dir / "batch_source")}
        assert first == {
            "location": (135, 135, 0),
            "bank_info": (15, 15, 0),
            "customer": (15, 15, 0),
            "account": (15, 15, 0),
        }
        again = {r.table: (r.inserted, r.updated) for r in load_files(conn, sample_dir / "batch_source")}
        assert set(again.values()) == {(0, 0)}
        # Values arrive exactly: the sample's first account and its balance as DECIMAL.
        row = conn.execute("select customer_id, tipe_akun, saldo::text from account where id = 'ACC-00001'").fetchone()
        assert row == ("CUST-0001", "Savings", "17668174.77")
        assert _counts(conn)["fraud_case"] == 0


def test_changed_file_updates_only_changed_rows_and_bumps_updated_at(settings, sample_dir, tmp_path):
    src = tmp_path / "batch"
    shutil.copytree(sample_dir / "batch_source", src)
    with connect(settings) as conn:
        load_files(conn, src)
        before = dict(conn.execute("select id, updated_at from customer").fetchall())
        text = (src / "customer.csv").read_text()
        (src / "customer.csv").write_text(
            text.replace(
                "CUST-0001,Hari,Napitupulu,hari.napitupulu@example.com,Platinum",
                "CUST-0001,Hari,Napitupulu,hari.napitupulu@example.com,Gold",
            )
        )
        result = {r.table: (r.inserted, r.updated) for r in load_files(conn, src)}
        assert result["customer"] == (0, 1)
        after = dict(conn.execute("select id, updated_at from customer").fetchall())
        assert [k for k in after if after[k] != before[k]] == ["CUST-0001"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("location.txt", "id,kota,provinsi\nLOC-001,Kota X,Y\n", "header is"),
        (
            "account.json",
            '[{"id": "ACC-1", "customer_id": "C", "tipe_akun": "Savings", "saldo": "lots"}]',
            "account.json",
        ),
        ("account.json", '{"id": "ACC-1"}', "expected a JSON array"),
        (
            "customer.csv",
            "id,nama_depan,nama_belakang,email,segmen,location_id,bank_id\nC1,a,b,c,d,e,f\nC1,a,b,c,d,e,f\n",
            "appears 2 times",
        ),
    ],
)
def test_bad_batch_file_is_refused_with_the_file_named(settings, tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with connect(settings) as conn, pytest.raises(InputFileError, match=message) as err:
        load_files(conn, tmp_path)
    assert name in str(err.value)
    with connect(settings) as conn:
        assert sum(_counts(conn).values()) == 0  # nothing half-loaded


def test_cli_load_files_reports_one_line_error_for_missing_folder(settings, tmp_path):
    result = CliRunner().invoke(app, ["source", "load-files", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "not a directory" in result.output
    assert "Traceback" not in result.output


@pytest.mark.embedded
def test_embedded_source_lifecycle(tmp_path: Path, monkeypatch, sample_dir):
    """With no BANKPIPE_SOURCE_URL, bankpipe runs its own PostgreSQL under the state dir."""
    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("BANKPIPE_SOURCE_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["source", "status"]).exit_code == 3
        up = runner.invoke(app, ["source", "up"])
        assert up.exit_code == 0, up.output
        assert runner.invoke(app, ["source", "status"]).exit_code == 0
        url = runner.invoke(app, ["source", "url"]).output.strip()
        assert "dbname=source_bank" in url and str(tmp_path) in url
        loaded = runner.invoke(app, ["source", "load-files", str(sample_dir / "batch_source")])
        assert loaded.exit_code == 0, loaded.output
        with psycopg.connect(url) as conn:
            assert _counts(conn)["customer"] == 15
    finally:
        down = runner.invoke(app, ["source", "down"])
        get_settings.cache_clear()
    assert down.exit_code == 0 and "stopped" in down.output
    assert runner.invoke(app, ["source", "status"]).exit_code == 3
