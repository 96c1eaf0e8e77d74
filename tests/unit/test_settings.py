"""Settings: env vars and .env pick the shape; secrets never show."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bankpipe.settings import Settings
from bankpipe.source.db import redact


def test_defaults_put_everything_under_the_state_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("BANKPIPE_STATE_DIR", "BANKPIPE_SOURCE_URL", "BANKPIPE_LANDING_DIR", "BANKPIPE_WAREHOUSE_PATH"):
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    state = (tmp_path / ".bankpipe").resolve()
    assert s.state == state
    assert s.warehouse_file == state / "warehouse.duckdb"
    assert s.transactions_landing == state / "landing" / "transactions"
    assert s.pgdata == state / "pg"
    assert s.source_url is None
    assert s.mlflow_tracking_uri == f"sqlite:///{state / 'mlflow.db'}"


def test_env_and_dotenv_override_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path(".env").write_text("BANKPIPE_WAREHOUSE_PATH=/data/wh.duckdb\nBANKPIPE_FX_TIMEOUT_S=3\n")
    monkeypatch.setenv("BANKPIPE_FX_TIMEOUT_S", "7.5")  # the environment wins over .env
    monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "xy123")
    s = Settings()
    assert s.warehouse_file == Path("/data/wh.duckdb")
    assert s.fx_timeout_s == 7.5
    assert s.snowflake_account == "xy123"


def test_unknown_warehouse_is_refused(monkeypatch):
    monkeypatch.setenv("BANKPIPE_WAREHOUSE", "oracle")
    with pytest.raises(ValueError, match="warehouse"):
        Settings()


def test_secrets_do_not_appear_in_repr(monkeypatch):
    monkeypatch.setenv("BANKPIPE_SOURCE_URL", "postgresql://u:hunter2@db:5432/source_bank")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "hunter3")
    s = Settings()
    assert "hunter2" not in repr(s) and "hunter3" not in repr(s)
    assert s.source_url.get_secret_value().endswith("/source_bank")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("postgresql://u:hunter2@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("host=db user=u password=hunter2 dbname=x", "host=db user=u password=*** dbname=x"),
        ("postgresql://postgres@127.0.0.1/x", "postgresql://postgres@127.0.0.1/x"),
    ],
)
def test_redact_masks_passwords(raw, shown):
    assert redact(raw) == shown


def test_snowflake_profile_uses_key_pair_when_a_key_is_set(tmp_path, monkeypatch):
    """Key-pair login: no password in the profile or required; the passphrase only via env_var()."""
    from bankpipe import transform

    monkeypatch.delenv("SNOWFLAKE_PASSWORD", raising=False)
    monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "xy123")
    monkeypatch.setenv("SNOWFLAKE_USER", "LOADER")
    monkeypatch.setenv("SNOWFLAKE_PRIVATE_KEY_PATH", str(tmp_path / "rsa_key.p8"))
    monkeypatch.setenv("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "open-sesame")
    s = Settings(state_dir=tmp_path, warehouse="snowflake")
    out = transform.profiles(s)["bankpipe"]["outputs"]["snowflake"]
    assert "password" not in out and out["private_key_path"] == str(tmp_path / "rsa_key.p8")
    assert out["private_key_passphrase"] == "{{ env_var('SNOWFLAKE_PRIVATE_KEY_PASSPHRASE') }}"
    assert "open-sesame" not in repr(out)
    with transform._secret_env(s):  # no password needed; the passphrase is exposed only meanwhile
        assert os.environ["SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"] == "open-sesame"


def test_snowflake_without_password_or_key_is_one_clear_error(tmp_path, monkeypatch):
    from bankpipe import transform
    from bankpipe.errors import BankpipeError

    for var in ("SNOWFLAKE_PASSWORD", "SNOWFLAKE_PRIVATE_KEY_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "xy123")
    monkeypatch.setenv("SNOWFLAKE_USER", "LOADER")
    s = Settings(state_dir=tmp_path, warehouse="snowflake")
    with (
        pytest.raises(BankpipeError, match=r"SNOWFLAKE_PASSWORD is not set.*SNOWFLAKE_PRIVATE_KEY_PATH"),
        transform._secret_env(s),
    ):
        pass


def test_warehouse_location_names_the_file_or_the_snowflake_database(tmp_path, monkeypatch):
    monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "xy12345.ap-southeast-1")
    duck = Settings(state_dir=tmp_path)
    assert duck.warehouse_location == str(tmp_path.resolve() / "warehouse.duckdb")
    snow = Settings(state_dir=tmp_path, warehouse="snowflake", snowflake_database="BANK_DB")
    assert snow.warehouse_location == "snowflake://xy12345.ap-southeast-1/BANK_DB"
