"""Secrets out of every message: passwords in connection strings, credentials and API keys in URLs.

One module for every sink (console, log files, `ops.run_log`, bronze `_source`, Airflow task
logs), so a new sink cannot pick a weaker rule. Parsing comes first (libpq's own parser, so any
quoting, spacing or percent-encoding is understood); conservative patterns run after it on every
string, so text that does not parse — an error message quoting a conninfo, a malformed URL with a
raw `@` in its password — is masked too, at the cost of sometimes masking a little more.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit

MASK = "***"

# Query parameters that carry credentials in the APIs of this kind (exchangerate.host's access_key,
# openexchangerates' app_id, the generic api_key / apikey / token ...).
_SECRET_PARAM = re.compile(r"key|token|secret|password|passphrase|signature|app_?id|auth", re.IGNORECASE)
# A path segment that looks like a key (exchangerate-api v6: /v6/<24 hex>/latest/USD).
_SECRET_SEGMENT = re.compile(r"^(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{20,}$")

# `scheme://user:` then everything up to the LAST `@` on the line: a password may hold a raw `@`
# (invalid in a URL, yet people write it, and libpq then splits it at the first one).
# (http(s) URLs are parsed instead, by `safe_url`: their path and query hold API keys, and a port
# followed by an e-mail address on the same line must not swallow the path.)
_URL_USERINFO = re.compile(r"(\b(?!https?://)[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\n]*@", re.IGNORECASE)
# key=value password, any spacing, quoted (with \' and \\ escapes) or bare.
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|\S+)", re.IGNORECASE)
# libpq's parse errors quote the offending piece of the conninfo, which may be part of a password:
# `missing "=" after "word'" in connection info string`, `invalid percent-encoded token: "p%zz"`.
# (Case-sensitive, whole word: "during" or "security" must not trigger it.)
_PARSE_ERROR = re.compile(r"connection info string|\bURI\b|percent-encoded")
_QUOTED = re.compile(r'"[^"\n]*"')
_HTTP_URL = re.compile(r"\bhttps?://[^\s\"'<>]+", re.IGNORECASE)


def safe_url(url: str) -> str:
    """The URL without user:password or anything that looks like an API key, fit for logs, errors and bronze."""
    import httpx  # here, not at the top: `import bankpipe` installs the log redaction and must stay light

    try:
        parsed = httpx.URL(url)
        params = [(k, MASK if _SECRET_PARAM.search(k) else v) for k, v in parsed.params.multi_items()]
        path = "/".join(MASK if _SECRET_SEGMENT.match(seg) else seg for seg in parsed.path.split("/"))
        safe = parsed.copy_with(username=None, password=None, path=path, query=None)
    except Exception:  # not a URL httpx can take (a bad port...): keep only scheme and host
        return _url_stub(url)
    # Encoded by hand: httpx would percent-encode the redaction mark and the API's own commas.
    return str(safe) + ("?" + "&".join(f"{k}={v}" for k, v in params) if params else "")


def _url_stub(url: str) -> str:
    """`scheme://host/***`: what is left of a URL that cannot be parsed, for a message."""
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*://)(?:[^/?#\s]*@)?([^/?#@\s]*)", url)
    return f"{m.group(1)}{m.group(2)}/{MASK}" if m else MASK


def _url_has_secret(url: str) -> bool:
    """Whether `safe_url` would mask anything (other URLs are left exactly as written)."""
    try:
        parts = urlsplit(url)
        userinfo = "@" in parts.netloc
    except ValueError:
        return True
    keys = [kv.split("=", 1)[0] for kv in parts.query.split("&") if kv]
    return (
        userinfo
        or any(_SECRET_PARAM.search(unquote(k)) for k in keys)
        or any(_SECRET_SEGMENT.match(seg) for seg in parts.path.split("/"))
    )


def _conninfo_dict(text: str) -> dict[str, str] | None:
    """libpq's reading of `text` as a conninfo (key=value or URL), or None if it is not one."""
    stripped = text.strip()
    if not stripped or ("=" not in stripped and "://" not in stripped):
        return None
    if "://" in stripped and not re.match(r"postgres(?:ql)?://", stripped):
        return None
    try:
        from psycopg.conninfo import conninfo_to_dict

        return {k: str(v) for k, v in conninfo_to_dict(stripped).items()}
    except Exception:
        return None


def _rebuild(text: str, params: dict[str, str]) -> str:
    """The conninfo `text` again, in its own form (URL or key=value), with the password masked."""
    from psycopg.conninfo import make_conninfo

    if "password" not in params:
        return text
    if not re.match(r"\s*postgres(?:ql)?://", text):
        return make_conninfo(**{**params, "password": MASK}).replace(f"password='{MASK}'", f"password={MASK}")
    # URL form: libpq's split of user, host, port and dbname, rebuilt with the password masked.
    rest = dict(params)
    rest.pop("password")
    user = quote(rest.pop("user", ""), safe="")
    hosts = rest.pop("host", "").split(",")
    ports = rest.pop("port", "").split(",")
    netloc = ",".join(
        h + (f":{ports[i] if len(ports) > 1 else ports[0]}" if ports != [""] else "") for i, h in enumerate(hosts)
    )
    dbname = rest.pop("dbname", None)
    scheme = text.strip().split("://", 1)[0]
    url = f"{scheme}://{user}:{MASK}@{netloc}" + (f"/{quote(dbname, safe='')}" if dbname is not None else "")
    if rest:
        url += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in rest.items())
    return url


def _patterns(text: str) -> str:
    """The conservative masks, for text that is not (only) a conninfo."""
    out = _HTTP_URL.sub(lambda m: safe_url(m.group(0)) if _url_has_secret(m.group(0)) else m.group(0), text)
    out = _URL_USERINFO.sub(rf"\1{MASK}@", out)
    out = _KV_PASSWORD.sub(rf"\1{MASK}", out)
    if _PARSE_ERROR.search(out):
        # `"="` is libpq naming the separator it wanted, not a piece of the conninfo.
        out = _QUOTED.sub(lambda m: m.group(0) if m.group(0) == '"="' else f'"{MASK}"', out)
    return out


def redact(text: str) -> str:
    """`text` (a conninfo, a URL, or a message quoting them) with passwords and API keys replaced by `***`."""
    try:
        return _redact(text)
    except Exception:  # never fail a log line or an error message; never let it through unmasked either
        out = _URL_USERINFO.sub(rf"\1{MASK}@", text)
        out = _KV_PASSWORD.sub(rf"\1{MASK}", out)
        return _HTTP_URL.sub(lambda m: _url_stub(m.group(0)), out)


def _redact(text: str) -> str:
    params = _conninfo_dict(text)
    out = _patterns(text)
    if params and "password" in params:
        # The patterns keep the user's own spelling; libpq's reading of the result says whether they
        # caught the whole password. If not (quoting they do not know), rebuild from what libpq parsed.
        again = _conninfo_dict(out)
        if again is None or again.get("password") != MASK or {**again, "password": ""} != {**params, "password": ""}:
            out = _patterns(_rebuild(text, params))
    # Belt and braces: a password libpq parsed must not survive anywhere, raw or percent-encoded.
    secret = (params or {}).get("password", "")
    if len(secret) >= 3:
        for form in {secret, quote(secret, safe=""), quote(secret), unquote(secret)}:
            out = out.replace(form, MASK)
    return out


def install_log_redaction() -> None:
    """Redact the message of every record logged under `bankpipe.*`, whatever handler writes it.

    The CLI's handlers redact their whole output (logs.RedactingFormatter); this also covers the
    handlers bankpipe does not own — Airflow's task logs, pytest's capture, a host application's.
    """
    base = logging.getLogRecordFactory()
    if getattr(base, "_bankpipe_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        # logging.makeLogRecord (structlog's formatter, Airflow's) builds a record named None first
        name = record.name if isinstance(record.name, str) else ""
        if name == "bankpipe" or name.startswith("bankpipe."):
            try:
                message = record.getMessage()
            except Exception:  # a malformed record is the handler's to report, as without us
                return record
            shown = redact(message)
            if shown != message:
                record.msg, record.args = shown, None
        return record

    factory._bankpipe_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
