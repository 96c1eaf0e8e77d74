"""Who may open the dashboard: nobody but local users without sign-in, else the bank's OIDC login (st.login).

`check_bind` is what `bankpipe dashboard --host` runs before starting Streamlit; `gate` is the first thing
every script run of the app does (before any page or query), and stops the run unless the viewer may see it.
Streamlit itself is imported only inside `gate`, so the CLI stays quick to start.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bankpipe.errors import BankpipeError
from bankpipe.settings import Settings

log = logging.getLogger(__name__)

ACCESS_LOG = "dashboard-access.log"
# Only these claims of the identity are ever written down: never a token, whatever the IdP sends.
LOGGED_CLAIMS = ("email", "sub", "name")
_SESSION_KEY = "_bankpipe_auth_recorded"
# What st.login() (one provider, no name) reads from [auth]; a missing one fails only at the first sign-in.
REQUIRED_AUTH_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
_write_lock = threading.Lock()


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (127.0.0.0/8, ::1) or `localhost`; other names are not resolved."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a DNS name may point anywhere: only a sign-in makes it safe


def check_bind(host: str, auth: str) -> None:
    """Refuse to serve on a non-loopback address without sign-in (one line naming the fix)."""
    if auth == "oidc" or is_loopback(host):
        return
    raise BankpipeError(
        f"refusing to serve the dashboard on {host} without sign-in: anyone who reaches it would see customer"
        " data; set BANKPIPE_DASHBOARD_AUTH=oidc with an [auth] section in .streamlit/secrets.toml"
        " (docs/deploy.md), or bind 127.0.0.1"
    )


def secrets_files() -> list[Path]:
    """The secrets.toml files Streamlit will read, in its order (~/.streamlit, then ./.streamlit, or secrets.files)."""
    from streamlit import config

    config.get_config_options(force_reparse=True)
    return [Path(p) for p in config.get_option("secrets.files")]


def check_oidc_config(files: list[Path] | None = None) -> None:
    """Before serving with oidc: an [auth] section with every key st.login() needs, or one line naming what lacks."""
    import tomllib

    files = secrets_files() if files is None else files
    section: dict[str, Any] = {}
    for path in files:
        if not path.is_file():
            continue
        try:
            section.update(tomllib.loads(path.read_text(encoding="utf-8")).get("auth") or {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            # The message names the file and the position, never a value.
            raise BankpipeError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
        if path.stat().st_mode & 0o077:
            log.warning("%s is readable by other users: it holds the dashboard's client and cookie secrets", path)
    where = " or ".join(str(p) for p in files)
    if not section:
        raise BankpipeError(f"BANKPIPE_DASHBOARD_AUTH=oidc needs an [auth] section in {where} (docs/deploy.md)")
    missing = [key for key in REQUIRED_AUTH_KEYS if not section.get(key)]
    if missing:
        raise BankpipeError(f"the [auth] section of Streamlit's secrets lacks {', '.join(missing)} (docs/deploy.md)")
    if not str(section["redirect_uri"]).endswith("/oauth2callback"):
        raise BankpipeError("[auth] redirect_uri must be the dashboard's public URL ending in /oauth2callback")


def _names(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def refusal(user: Mapping[str, Any], settings: Settings) -> str | None:
    """Why this signed-in user may not open the dashboard under the allow-lists, or None if they may."""
    domains = _names(settings.dashboard_allowed_domains)
    groups = _names(settings.dashboard_allowed_groups)
    if domains:
        email = str(user.get("email") or "").strip().lower()
        domain = email.rpartition("@")[2] if "@" in email else ""
        if domain not in domains:
            return "your e-mail domain is not on the dashboard's allow-list (BANKPIPE_DASHBOARD_ALLOWED_DOMAINS)"
        # An IdP that lets users type any address marks it unverified: a domain is proven only when verified.
        if user.get("email_verified") is False:
            return "your e-mail address is not verified by the sign-in provider"
    if groups:
        claim = user.get("groups") or []
        have = {claim.lower()} if isinstance(claim, str) else {str(g).lower() for g in claim}
        if not have & groups:
            return "you are in none of the groups allowed to open the dashboard (BANKPIPE_DASHBOARD_ALLOWED_GROUPS)"
    return None


def record(settings: Settings, event: str, user: Mapping[str, Any], reason: str | None = None) -> None:
    """Append one JSON line (when, event, e-mail, sub, name) to <state>/logs/dashboard-access.log, and log it."""
    entry: dict[str, Any] = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "event": event}
    entry.update({claim: user.get(claim) for claim in LOGGED_CLAIMS if user.get(claim) is not None})
    if reason:
        entry["reason"] = reason
    # JSON, not free text: a name from the IdP with a newline in it cannot forge a second entry.
    line = json.dumps(entry, ensure_ascii=False, default=str)
    (log.warning if event != "sign-in" else log.info)("dashboard %s", line)
    try:
        path = settings.log_dir / ACCESS_LOG
        with _write_lock, path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
        path.chmod(0o600)
    except OSError as exc:  # the log line above is the record of last resort
        log.warning("could not write %s: %s", Path(ACCESS_LOG), exc)


def _configured(st: Any) -> bool:
    """Whether Streamlit's secrets hold an [auth] section (st.login needs it)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all: Streamlit raises, and sign-in is simply not configured
        return False


def gate(settings: Settings) -> None:
    """Stop this script run unless the dashboard is local-only or the viewer signed in and is allowed."""
    if settings.dashboard_auth != "oidc":
        return
    import streamlit as st

    from bankpipe.dashboard.ui import md_escape

    if not _configured(st):
        # Fail closed: a deployment that asked for sign-in but lost its config shows nothing.
        st.error(
            "Sign-in is not configured: BANKPIPE_DASHBOARD_AUTH=oidc needs an [auth] section in"
            " Streamlit's secrets.toml (docs/deploy.md)."
        )
        st.stop()
    user = st.user.to_dict()
    if user.get("is_logged_in") is not True:
        st.markdown("#### bankpipe")
        st.caption("Sign in with your bank account to open the dashboard.")
        st.button("Sign in", type="primary", on_click=st.login)
        st.stop()
    reason = refusal(user, settings)
    if st.session_state.get(_SESSION_KEY) != user.get("sub"):
        # Once per browser session and identity, not on every rerun of the script.
        st.session_state[_SESSION_KEY] = user.get("sub")
        record(settings, "refused" if reason else "sign-in", user, reason)
    who = str(user.get("email") or user.get("name") or user.get("sub") or "signed in")
    if reason:
        st.error(f"{md_escape(who)}: {reason}.", icon=":material/block:")  # the IdP's text, shown as text
        st.button("Sign out", on_click=st.logout)
        st.stop()
    with st.sidebar:
        st.text(f"Signed in as {who}")  # st.text: the IdP's name is shown literally, never as markdown
        st.button("Sign out", on_click=st.logout, key="bankpipe_sign_out")


__all__ = ["check_bind", "check_oidc_config", "gate", "is_loopback", "record", "refusal"]
