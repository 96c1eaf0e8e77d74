"""A minimal OpenID Connect provider on 127.0.0.1 for tests: the bank's IdP, auto-approving one test user.

Implements what Streamlit's st.login (Authlib) uses of the authorization-code flow: discovery, /authorize
(no login form: it approves `user` at once and redirects back with a code and the state), /token (checks
the client's credentials, the code and the redirect URI; returns an RS256 id_token carrying the nonce),
/jwks and /userinfo. Every request is recorded, so a test can check the flow that really happened.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

TOKEN_LIFETIME_S = 600


@dataclass
class Provider:
    """The provider's configuration and what happened to it."""

    client_id: str
    client_secret: str
    redirect_uri: str
    user: dict[str, Any]
    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-key-1"}))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        """The discovery document (/.well-known/openid-configuration)."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile", "email"],
        }

    def id_token(self, nonce: str | None) -> str:
        """An RS256-signed id_token for the test user, audience the client, with the login's nonce."""
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + TOKEN_LIFETIME_S, **self.user}
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)


class _Handler(BaseHTTPRequestHandler):
    provider: Provider  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
        pass  # the test reads provider.requests instead of stderr noise

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, status: int, error: str) -> None:
        self.provider.errors.append(f"{self.command} {urlparse(self.path).path}: {error}")
        self._json(status, {"error": error})

    def do_GET(self) -> None:
        p = self.provider
        url = urlparse(self.path)
        p.requests.append(f"GET {url.path}")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            self._json(200, p.metadata())
        elif url.path == "/jwks":
            self._json(200, {"keys": [{**p.key.as_dict(private=False), "use": "sig", "alg": "RS256"}]})
        elif url.path == "/authorize":
            if query.get("client_id") != p.client_id:
                return self._fail(400, "unauthorized_client")
            if query.get("redirect_uri") != p.redirect_uri:
                return self._fail(400, "invalid_redirect_uri")  # never redirect to an unregistered address
            if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
                return self._fail(400, "invalid_request")
            code = secrets.token_urlsafe(16)
            p.codes[code] = {"nonce": query.get("nonce"), "redirect_uri": query["redirect_uri"]}
            self.send_response(302)
            self.send_header(
                "Location", f"{p.redirect_uri}?{urlencode({'code': code, 'state': query.get('state', '')})}"
            )
            self.end_headers()
        elif url.path == "/userinfo":
            if self.headers.get("Authorization", "") not in {f"Bearer {t}" for t in p.issued_tokens}:
                return self._fail(401, "invalid_token")
            self._json(200, p.user)
        else:
            self._fail(404, "not_found")

    def do_POST(self) -> None:
        p = self.provider
        url = urlparse(self.path)
        p.requests.append(f"POST {url.path}")
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if url.path != "/token":
            return self._fail(404, "not_found")
        client = (form.get("client_id"), form.get("client_secret"))
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            client = (user, password)
        if client != (p.client_id, p.client_secret):
            return self._fail(401, "invalid_client")
        grant = p.codes.pop(form.get("code", ""), None)  # a code is good for one exchange only
        if form.get("grant_type") != "authorization_code" or grant is None:
            return self._fail(400, "invalid_grant")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return self._fail(400, "invalid_grant")
        access = secrets.token_urlsafe(24)
        id_token = p.id_token(grant["nonce"])
        p.issued_tokens += [access, id_token]
        self._json(
            200,
            {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S, "id_token": id_token},
        )


class OIDCServer:
    """The provider served on 127.0.0.1 (a free port) in a thread; use as a context manager."""

    def __init__(self, provider: Provider) -> None:
        handler = type("Handler", (_Handler,), {"provider": provider})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        provider.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.provider = provider
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def metadata_url(self) -> str:
        return f"{self.provider.issuer}/.well-known/openid-configuration"

    def __enter__(self) -> OIDCServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
