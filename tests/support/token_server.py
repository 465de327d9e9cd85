"""A bearer-token service for the distribution registry's ``auth: token`` mode.

Why: Docker Hub, GHCR, Harbor, GitLab and Quay all send clients to a token service; kiln must get
the scopes right, and only the real registry checking a real signed token proves that. This
server implements the distribution token protocol (``GET /token?service=&scope=...`` with
optional basic auth), grants the intersection of the requested and the permitted actions, and
signs RS256 JWTs with ``openssl`` (no Python crypto dependency). The registry trusts the signing
certificate through ``rootcertbundle`` and finds it in the token's ``x5c`` header.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from kiln.closeable import Closeable
from tests.support.http_server import Exchange, HttpServer

ISSUER = "kiln-test-issuer"
SERVICE = "kiln-test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class Grant:
    """``user`` may do ``actions`` on repositories matching ``pattern`` (fnmatch)."""

    user: str  # "" for anonymous
    pattern: str
    actions: tuple[str, ...]


@dataclass
class TokenRequest:
    """One request the token server answered, for tests to inspect."""

    user: str
    scopes: list[str]
    granted: list[dict[str, object]]


@dataclass
class TokenServer(Closeable):
    """Serves tokens on ``realm``; ``users`` maps user -> password; ``grants`` is the ACL."""

    workdir: Path
    users: dict[str, str] = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)
    lifetime: int = 300
    requests: list[TokenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cert = self.workdir / "token.crt"
        self.key = self.workdir / "token.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(self.key), "-out", str(self.cert), "-subj", "/CN=kiln token signer"],
            check=True, capture_output=True,
        )  # fmt: skip
        pem = self.cert.read_text().splitlines()
        self._x5c = "".join(line for line in pem if not line.startswith("-----"))
        self._lock = threading.Lock()
        self._server = HttpServer(self._answer)
        self.realm = f"{self._server.url}/token"

    def close(self) -> None:
        """Shut the HTTP server down."""
        self._server.close()

    def registry_auth_config(self) -> str:
        """The ``auth:`` section for the registry's config.yml."""
        return (
            "auth:\n  token:\n"
            f"    realm: {self.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {self.cert}\n"
        )

    def grant(self, user: str, scopes: list[str]) -> list[dict[str, object]]:
        """The ``access`` claim for ``user`` asking for ``scopes``: only what the ACL allows."""
        access: list[dict[str, object]] = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, wanted = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            allowed: set[str] = set()
            for rule in self.grants:
                if rule.user == user and fnmatch.fnmatchcase(name, rule.pattern):
                    allowed.update(rule.actions)
            actions = [a for a in wanted.split(",") if a in allowed]
            if actions:
                access.append({"type": kind, "name": name, "actions": actions})
        return access

    def sign(self, user: str, access: list[dict[str, object]]) -> str:
        """A JWT the registry accepts (RS256, ``x5c`` chain to ``rootcertbundle``)."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": ISSUER,
            "sub": user,
            "aud": SERVICE,
            "exp": now + self.lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            check=True,
            capture_output=True,
        ).stdout
        return signing_input + "." + _b64url(signature)

    def _answer(self, exchange: Exchange) -> None:
        if exchange.route != "/token":
            exchange.reply_json(404, {"error": "not found"})
            return
        query = parse_qs(urlsplit(exchange.path).query)
        user = self.authenticate(exchange.headers.get("Authorization"))
        if user is None or query.get("service", [SERVICE])[0] != SERVICE:
            exchange.reply_json(401, {"details": "bad credentials"})
            return
        scopes = [s for value in query.get("scope", []) for s in value.split(" ")]
        access = self.grant(user, scopes)
        with self._lock:
            self.requests.append(TokenRequest(user, scopes, access))
        token = self.sign(user, access)
        exchange.reply_json(
            200, {"token": token, "access_token": token, "expires_in": self.lifetime}
        )

    def authenticate(self, header: str | None) -> str | None:
        """The user named by a Basic ``Authorization`` header; "" if none; None if wrong."""
        if not header:
            return ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(value).decode().partition(":")
        return user if self.users.get(user) == password else None
