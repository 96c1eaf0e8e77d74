"""Dashboard access: no sign-in only on loopback; with oidc, nothing but a sign-in button until st.user is logged in."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bankpipe.dashboard import auth, ui
from bankpipe.errors import BankpipeError
from bankpipe.settings import Settings
from tests.dashboard.apptest import APP, RUN_TIMEOUT_S, problems, texts

AUTH_SECRETS = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret-of-enough-length-000",
    "client_id": "bankpipe-dashboard",
    "client_secret": "test-client-secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
ANA = {"is_logged_in": True, "email": "ana@bank.example", "email_verified": True, "sub": "u-ana", "name": "Ana"}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "::1", "[::1]"])
def test_loopback_hosts_need_no_sign_in(host: str) -> None:
    assert auth.is_loopback(host)
    auth.check_bind(host, "none")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.168.0.5", "dash.bank.internal", ""])
def test_other_hosts_are_refused_without_sign_in_and_allowed_with_it(host: str) -> None:
    assert not auth.is_loopback(host)
    with pytest.raises(BankpipeError, match=r"refusing to serve the dashboard on .* without sign-in"):
        auth.check_bind(host, "none")
    auth.check_bind(host, "oidc")


def _cli(args: list[str], env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKPIPE_")}
    env.update({"BANKPIPE_STATE_DIR": str(tmp_path / "state"), **env_extra})
    return subprocess.run(
        [sys.executable, "-m", "bankpipe", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_cli_refuses_a_public_host_without_sign_in_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _cli(["dashboard", "--host", "0.0.0.0", "--port", str(port)], {}, tmp_path)
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to serve the dashboard on 0.0.0.0 without sign-in" in lines[0], lines
    assert "BANKPIPE_DASHBOARD_AUTH=oidc" in lines[0]
    assert "http://0.0.0.0" not in result.stdout  # no URL announced for a server that must not start


def _write_secrets(directory: Path, values: dict[str, str]) -> Path:
    (directory / ".streamlit").mkdir(parents=True, exist_ok=True)
    path = directory / ".streamlit" / "secrets.toml"
    path.write_text("[auth]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


def test_cli_with_oidc_but_no_auth_section_says_so_in_one_line(tmp_path: Path) -> None:
    result = _cli(["dashboard"], {"BANKPIPE_DASHBOARD_AUTH": "oidc", "HOME": str(tmp_path / "home")}, tmp_path)
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "needs an [auth] section in" in lines[0], lines
    assert str(tmp_path / ".streamlit" / "secrets.toml") in lines[0]


def test_cli_with_oidc_passes_the_host_check(tmp_path: Path) -> None:
    _write_secrets(tmp_path, AUTH_SECRETS)
    # Hold 127.0.0.1:PORT so the 0.0.0.0 bind fails: the run gets past the sign-in checks to the port
    # check, and nothing is ever served on a public address during the test.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = _cli(
            ["dashboard", "--host", "0.0.0.0", "--port", str(port)],
            {"BANKPIPE_DASHBOARD_AUTH": "oidc", "HOME": str(tmp_path / "home")},
            tmp_path,
        )
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "refusing" not in out
    assert f"port {port} on 0.0.0.0 is in use" in out


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_secret": ""}, "lacks client_secret"),
        ({"cookie_secret": None, "server_metadata_url": None}, "lacks cookie_secret, server_metadata_url"),
        ({"redirect_uri": "https://dash.bank.example/"}, "ending in /oauth2callback"),
    ],
)
def test_oidc_config_is_checked_before_serving(tmp_path: Path, change: dict[str, str | None], error: str) -> None:
    values = {k: v for k, v in {**AUTH_SECRETS, **change}.items() if v is not None}
    path = _write_secrets(tmp_path, values)
    with pytest.raises(BankpipeError, match=re.escape(error)) as caught:
        auth.check_oidc_config([tmp_path / "absent.toml", path])
    assert "test-client-secret" not in str(caught.value)  # names keys, never values


def test_oidc_config_later_file_completes_the_earlier_and_bad_toml_is_one_line(tmp_path: Path) -> None:
    home = _write_secrets(tmp_path / "home", {k: v for k, v in AUTH_SECRETS.items() if k != "client_secret"})
    project = _write_secrets(tmp_path / "project", {"client_secret": "s"})
    auth.check_oidc_config([home, project])  # Streamlit merges them in this order, and so does the check
    project.write_text('[auth]\nclient_secret = "unterminated\n')
    with pytest.raises(BankpipeError, match=f"cannot read {re.escape(str(project))}: TOMLDecodeError"):
        auth.check_oidc_config([home, project])


def _settings(**values: str) -> Settings:
    return Settings(_env_file=None, dashboard_auth="oidc", **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("user", "settings", "refused"),
    [
        (ANA, {}, None),
        (ANA, {"dashboard_allowed_domains": "bank.example, other.example"}, None),
        ({**ANA, "email": "Ana@Bank.Example"}, {"dashboard_allowed_domains": "bank.example"}, None),
        ({**ANA, "email": "ana@evil.example"}, {"dashboard_allowed_domains": "bank.example"}, "e-mail domain"),
        # a look-alike: the domain is what follows the last @, compared whole
        ({**ANA, "email": "ana@bank.example.evil.test"}, {"dashboard_allowed_domains": "bank.example"}, "domain"),
        ({**ANA, "email_verified": False}, {"dashboard_allowed_domains": "bank.example"}, "not verified"),
        ({k: v for k, v in ANA.items() if k != "email"}, {"dashboard_allowed_domains": "bank.example"}, "domain"),
        ({**ANA, "groups": ["Risk", "ops"]}, {"dashboard_allowed_groups": "risk"}, None),
        ({**ANA, "groups": "risk"}, {"dashboard_allowed_groups": "risk,audit"}, None),
        ({**ANA, "groups": ["sales"]}, {"dashboard_allowed_groups": "risk"}, "groups"),
        (ANA, {"dashboard_allowed_groups": "risk"}, "groups"),
    ],
)
def test_allow_lists(user: dict[str, object], settings: dict[str, str], refused: str | None) -> None:
    reason = auth.refusal(user, _settings(**settings))
    assert (reason is None) if refused is None else (refused in (reason or "")), reason


# --- the gate in the app (AppTest, no warehouse needed: the gate runs before any query) -----------------


@pytest.fixture
def oidc_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_state: Callable[[Path], Settings]
) -> Callable[..., Settings]:
    """Settings with BANKPIPE_DASHBOARD_AUTH=oidc (and optional allow-lists) active for the app."""

    def use(**env: str) -> Settings:
        monkeypatch.setenv("BANKPIPE_DASHBOARD_AUTH", "oidc")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return use_state(tmp_path / "state")

    return use


def _app(user: dict[str, object] | None, secrets: dict[str, object] | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S)
    if secrets is not None:
        at.secrets["auth"] = secrets
    if user is not None:
        at.user = user
    return at.run()


def _shows_no_page(at: AppTest) -> None:
    """No page ran: no title, no filters or captions in the sidebar, no table, metric or chart."""
    assert not at.title and not at.header and not at.subheader
    assert not at.sidebar.caption and not at.sidebar.date_input and not at.sidebar.selectbox
    assert not at.dataframe and not at.table and not at.metric and not at.get("plotly_chart")


def access_log(settings: Settings) -> list[dict[str, object]]:
    path = settings.log_dir / auth.ACCESS_LOG
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_without_oidc_the_page_runs(tmp_path: Path, use_state: Callable[[Path], Settings]) -> None:
    use_state(tmp_path / "state")  # the contrast for the tests below: same app, same empty warehouse
    at = _app(None)
    assert "Overview" in [t.value for t in at.title]
    assert not [b for b in at.button if b.label == "Sign in"]


@pytest.mark.parametrize("user", [None, {"is_logged_in": False}, {"email": "ana@bank.example"}])
def test_signed_out_viewer_sees_only_the_sign_in_button(oidc_state: Callable[..., Settings], user) -> None:
    settings = oidc_state()
    at = _app(user, AUTH_SECRETS)
    assert not problems(at), problems(at)
    _shows_no_page(at)
    assert [b.label for b in at.button] == ["Sign in"]
    assert "Sign in with your bank account" in texts(at)
    assert access_log(settings) == []


def test_oidc_without_an_auth_section_fails_closed(oidc_state: Callable[..., Settings]) -> None:
    oidc_state()
    at = _app(ANA)  # even a session that claims to be logged in sees nothing
    _shows_no_page(at)
    assert not at.button
    assert "Sign-in is not configured" in at.error[0].value


def test_signed_in_viewer_sees_the_page_and_the_sign_in_is_logged_once(oidc_state: Callable[..., Settings]) -> None:
    settings = oidc_state()
    user = {**ANA, "tokens": {"id": "eyJ-a-secret-id-token", "access": "a-secret-access-token"}}
    at = _app(user, AUTH_SECRETS)
    assert not problems(at), problems(at)
    assert "Overview" in [t.value for t in at.title]
    assert "Signed in as ana@bank.example" in [t.value for t in at.sidebar.text]
    assert "Sign out" in [b.label for b in at.sidebar.button]
    at.run()  # a rerun in the same session is not a new sign-in
    entries = access_log(settings)
    assert [(e["event"], e["email"], e["sub"], e["name"]) for e in entries] == [
        ("sign-in", "ana@bank.example", "u-ana", "Ana")
    ]
    assert "at" in entries[0]
    text = (settings.log_dir / auth.ACCESS_LOG).read_text()
    assert "secret" not in text and "eyJ" not in text  # claims only, never a token
    assert (settings.log_dir / auth.ACCESS_LOG).stat().st_mode & 0o777 == 0o600


def test_a_user_outside_the_allow_list_sees_no_page_and_is_logged(oidc_state: Callable[..., Settings]) -> None:
    settings = oidc_state(BANKPIPE_DASHBOARD_ALLOWED_DOMAINS="bank.example")
    mallory = {**ANA, "email": "mallory@evil.example", "sub": "u-m", "name": "**Mallory** [x](http://evil.test)"}
    at = _app(mallory, AUTH_SECRETS)
    _shows_no_page(at)
    # the IdP's text goes through md_escape: shown literally, never as markdown
    assert ui.md_escape("mallory@evil.example") in at.error[0].value and "allow-list" in at.error[0].value
    assert [b.label for b in at.button] == ["Sign out"]
    [entry] = access_log(settings)
    assert entry["event"] == "refused" and entry["email"] == "mallory@evil.example" and "allow-list" in entry["reason"]
    assert entry["name"] == mallory["name"]  # kept as data in the JSON line, not interpreted
