"""Redaction of connection strings, URLs and messages quoting them: no piece of a secret survives."""

from __future__ import annotations

import logging
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bankpipe.logs import RedactingFormatter
from bankpipe.redact import MASK, redact, safe_url

# Passwords that break naive patterns: separators, quotes, escapes, percent signs.
PASSWORDS = ["hunter2", "p@ss word", "it's", "a\\'b", "Pw-S3cret@with'quote", "50%off", "x=y z", "a b@c:d/e"]


def _pieces(secret: str) -> list[str]:
    """Every fragment of the secret long enough to identify it (split at its separators)."""
    out = {secret, quote(secret, safe="")}
    for sep in " @'\\=:/%":
        out.update(part for part in secret.split(sep) if len(part) >= 3)
    return sorted(out)


@pytest.mark.parametrize("secret", PASSWORDS)
@pytest.mark.parametrize("form", ["kv", "kv-spaced", "url-encoded", "url-raw"])
def test_no_piece_of_a_password_survives(secret: str, form: str) -> None:
    if form == "kv":
        text = make_conninfo(host="db", user="etl", password=secret, dbname="source_bank")
    elif form == "kv-spaced":
        escaped = secret.replace("\\", "\\\\").replace("'", "\\'")
        text = f"host=db  user = etl password = '{escaped}'  dbname=source_bank"
    elif form == "url-encoded":
        text = f"postgresql://etl:{quote(secret, safe='')}@db:5432/source_bank"
    else:  # what people paste: not a valid URL, yet it reaches messages
        text = f"postgresql://etl:{secret}@db:5432/source_bank"
    shown = redact(text)
    assert MASK in shown
    for piece in _pieces(secret):
        assert piece not in shown.replace("password", ""), (text, shown)
    # The rest stays readable: where the source is.
    assert "db" in shown and "source_bank" in shown and "etl" in shown


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("postgresql://u:hunter2@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("host=db user=u password=hunter2 dbname=x", "host=db user=u password=*** dbname=x"),
        ("host=db password='p@ss word' dbname=x", "host=db password=*** dbname=x"),
        ("host=db password = x dbname=y", "host=db password = *** dbname=y"),
        ("host=db PASSWORD=x dbname=y", "host=db PASSWORD=*** dbname=y"),
        ("postgresql://u:p%40ss@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
        ("postgresql://postgres@127.0.0.1/x", "postgresql://postgres@127.0.0.1/x"),
        ("host=/tmp/pg dbname=source_bank", "host=/tmp/pg dbname=source_bank"),
        ("postgresql://u:pw@h1:1,h2:2/db", "postgresql://u:***@h1:1,h2:2/db"),
    ],
)
def test_the_rest_of_a_conninfo_is_kept_as_written(raw: str, shown: str) -> None:
    assert redact(raw) == shown


@pytest.mark.parametrize(
    "message",
    [
        "cannot connect to the source database postgresql://etl:p@ss word@db/x (after 3 attempts): refused",
        "SourceError: source database host=db password='p@ss word' dbname=x: missing table customer",
        "FX API http://127.0.0.1:8/v6/0123456789abcdef01234567/latest?apikey=p@ss-word failed (ops@bank.example)",
    ],
)
def test_secrets_inside_free_text_are_masked(message: str) -> None:
    shown = redact(message)
    assert "p@ss" not in shown and "word" not in shown.replace("password", "")
    assert "0123456789abcdef01234567" not in shown
    assert "failed" in shown or "refused" in shown or "missing table customer" in shown
    if "FX API" in shown:  # the URL keeps its host and path: what was called stays readable
        assert "http://127.0.0.1:8/v6/***/latest?apikey=***" in shown


def test_libpq_parse_errors_do_not_quote_the_password() -> None:
    """libpq quotes the piece it could not parse, which is a piece of the password here."""
    with pytest.raises(psycopg.ProgrammingError) as err:
        conninfo_to_dict("host=db password=p@ss word dbname=x")
    assert "word" in str(err.value)  # what libpq says, unredacted
    assert "word" not in redact(str(err.value))


def test_api_keys_in_url_paths_and_queries() -> None:
    url = "https://u:pw@h/v6/0123456789abcdef01234567/latest/USD?access_key=S3cr3t&from=USD"
    assert safe_url(url) == "https://h/v6/***/latest/USD?access_key=***&from=USD"
    assert redact(f"GET {url} -> 500") == "GET https://h/v6/***/latest/USD?access_key=***&from=USD -> 500"


def test_redaction_is_idempotent() -> None:
    for text in ("postgresql://u:hunter2@db/x", "host=db password='a b' dbname=x", "http://h/x?token=abc"):
        once = redact(text)
        assert redact(once) == once


def test_log_records_and_tracebacks_are_redacted() -> None:
    fmt = RedactingFormatter("%(message)s")
    try:
        raise RuntimeError("boom at postgresql://etl:hunter2@db/x")
    except RuntimeError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "url %s", ("host=db password=hunter2",), None)
        record.exc_info = sys.exc_info()
    text = fmt.format(record)
    assert "hunter2" not in text and "RuntimeError" in text and "password=***" in text


def test_an_unparseable_source_url_fails_in_one_line_without_the_password(tmp_path) -> None:
    from bankpipe.errors import SourceError
    from bankpipe.settings import Settings
    from bankpipe.source.db import connect

    settings = Settings(state_dir=tmp_path, source_url="host=db user=etl password=p@ss word dbname=x")
    with pytest.raises(SourceError, match="cannot be parsed") as err, connect(settings):
        pass
    assert "word" not in str(err.value).replace("password", "") and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "see http://127.0.0.1:8501 for the dashboard",
        'GET http://h/p?q=a%20b&to=IDR,SGD failed during "loading"',
        'security review: "Pw" is a column name',
        "sqlite:////tmp/state/mlflow.db",
    ],
)
def test_text_without_secrets_is_left_exactly_as_written(text: str) -> None:
    assert redact(text) == text


def test_every_bankpipe_log_record_is_redacted_whatever_the_handler(caplog: pytest.LogCaptureFixture) -> None:
    """Airflow's handlers and pytest's capture are not bankpipe's: the record itself is redacted."""
    import bankpipe  # noqa: F401  (installs the record factory)

    with caplog.at_level(logging.INFO):
        logging.getLogger("bankpipe.source.db").info("source %s", "host=db password='p@ss word' dbname=x")
        logging.getLogger("elsewhere").info("source %s", "password=untouched")
    assert caplog.records[0].getMessage() == "source host=db password=*** dbname=x"
    assert caplog.records[1].getMessage() == "source password=untouched"  # not ours to change


@pytest.mark.parametrize(
    "text",
    [
        "GET http://h:99999/v1?token=S3cr3tTok failed",
        "see http://[::1/x?apikey=S3cr3tTok",
        "http://u:S3cr3tTok@h:bad/x",
    ],
)
def test_urls_that_do_not_parse_are_masked_not_raised(text: str) -> None:
    shown = redact(text)
    assert "S3cr3tTok" not in shown and MASK in shown


def test_the_record_factory_takes_records_made_without_a_name() -> None:
    """logging.makeLogRecord (used by structlog's and Airflow's formatters) first makes a record named None."""
    from bankpipe.redact import install_log_redaction

    install_log_redaction()
    # raised AttributeError inside the factory before (a "--- Logging error ---" in the middle of a run)
    record = logging.makeLogRecord({"name": "bankpipe.x", "msg": "loaded %d files", "args": (3,)})
    assert (record.name, record.getMessage()) == ("bankpipe.x", "loaded 3 files")
