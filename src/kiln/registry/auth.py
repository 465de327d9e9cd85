"""Registry authentication: ``WWW-Authenticate`` challenges, basic auth and bearer tokens.

Why its own module: the distribution spec lets a registry demand basic auth or send clients to
a token service with per-repository scopes. This module turns a challenge plus ``Credentials``
into an ``Authorization`` header, caching tokens per scope set, and explains what happened to
the credentials when a registry refuses. It never decides where headers go: the auth layer
(``registry.session``) attaches them to requests for the registry's own host only.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from kiln.errors import AuthError
from kiln.net import Response
from kiln.registry.credentials import Credentials
from kiln.registry.problems import response_error

#: Sends one request to a token service: (method, url, headers, body) -> response.
TokenSender = Callable[[str, str, Mapping[str, str], bytes | None], Response]

_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_TOKEN_MARGIN = 30.0  # refresh tokens this many seconds before the registry says they expire
_DEFAULT_TOKEN_LIFETIME = 60.0  # the distribution token spec's default expires_in
_AUTH_ACCESS = "check that these credentials may access this repository (or use others)"


@dataclass(frozen=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge: ``scheme`` (lower-case) and its params."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, header: str) -> Challenge | None:
        """Parse ``Bearer realm="...",service="..."`` or ``Basic realm="..."``; None if empty."""
        header = header.strip()
        if not header:
            return None
        scheme, _, rest = header.partition(" ")
        params = {
            match.group(1).lower(): (
                re.sub(r"\\(.)", r"\1", match.group(2))
                if match.group(2) is not None
                else match.group(3)
            )
            for match in _PARAM.finditer(rest)
        }
        return cls(scheme.lower(), params)


def pull_scope(repository: str) -> str:
    """The token scope for reading ``repository``."""
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    """The token scope for writing (and reading) ``repository``."""
    return f"repository:{repository}:pull,push"


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


class Authenticator:
    """Produces ``Authorization`` headers for one registry, fetching bearer tokens as needed."""

    def __init__(self, send: TokenSender, registry: str, credentials: Credentials | None) -> None:
        self._send = send
        self._registry = registry
        self._credentials = credentials
        self.challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], _Token] = {}
        # Where the credentials went, for explain(): None (nowhere yet), "registry" (basic
        # auth or a registry token) or the token service's host; and whether it refused them.
        self._sent_to: str | None = None
        self._token_refused = False

    def __repr__(self) -> str:
        return f"Authenticator({self._registry!r}, credentials={self._credentials!r})"

    def headers(self, scopes: Iterable[str]) -> dict[str, str]:
        """The ``Authorization`` header for a request needing ``scopes`` (empty if anonymous)."""
        challenge = self.challenge
        if challenge is None:
            return {}
        creds = self._credentials
        if challenge.scheme == "basic":
            if creds is None or not creds.has_basic:
                return {}
            assert creds.username is not None and creds.password is not None
            self._sent_to = "registry"
            return {"Authorization": _basic(creds.username, creds.password)}
        if challenge.scheme == "bearer":
            return {"Authorization": f"Bearer {self._token(tuple(sorted(set(scopes))))}"}
        return {}

    def update(self, response: Response, scopes: Iterable[str]) -> bool:
        """Learn from a 401; True if retrying with new credentials could succeed."""
        challenge = Challenge.parse(response.headers.get("WWW-Authenticate", ""))
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            return False
        self.challenge = challenge
        if challenge.scheme == "basic":
            return self._credentials is not None and self._credentials.has_basic
        self._tokens.pop(tuple(sorted(set(scopes))), None)
        return True

    def _token(self, scopes: tuple[str, ...]) -> str:
        cached = self._tokens.get(scopes)
        if cached is not None and cached.expires_at > time.monotonic():
            return cached.value
        creds = self._credentials
        if creds is not None and creds.registry_token:
            self._sent_to = "registry"
            return creds.registry_token
        token = self._fetch_token(scopes)
        self._tokens[scopes] = token
        return token.value

    def _fetch_token(self, scopes: tuple[str, ...]) -> _Token:
        assert self.challenge is not None
        realm = self.challenge.params.get("realm")
        if not realm:
            raise AuthError(
                "the registry's bearer challenge has no realm", reference=self._registry
            )
        service = self.challenge.params.get("service")
        creds = self._credentials
        token_host = urlsplit(realm).netloc or realm
        self._token_refused = False
        if creds is not None and (creds.identity_token or creds.has_basic):
            self._sent_to = token_host
        if creds is not None and creds.identity_token:
            response = self._refresh_token_request(realm, service, scopes, creds.identity_token)
        else:
            response = self._basic_token_request(realm, service, scopes, creds)
        if response.status_code != 200:
            self._token_refused = True
            raise response_error(
                response,
                reference=self._registry,
                action=f"getting a token from {token_host}",
                credentials=self,
            )
        return self._parse_token(response)

    def explain(self, status: int) -> tuple[str, str]:
        """What happened to the credentials before a 401/403 (status), and what to do about
        it: none configured, configured but not sent, refused, or accepted without the right.
        Names the registry, the credentials' owner and their source; never a secret."""
        registry, creds = self._registry, self._credentials
        if creds is None:
            return (
                f"no credentials were sent: none are configured for {registry}",
                f"log in with `kiln login {registry}`, or add {registry} to the Docker "
                "config.json (DOCKER_CONFIG) or a credential helper",
            )
        whose = f"the credentials for {registry} ({creds.describe()}"
        whose += f", from {creds.source})" if creds.source else ")"
        where = creds.source or "the Docker config.json or credential helper"
        fix = f"correct them in {where}"
        if creds.source == "kiln login":
            fix = "check the user name and password given to kiln login"
        if self._sent_to is None:
            if self.challenge is not None and self.challenge.scheme == "basic":
                return (
                    f"{whose} were not sent: the registry asks for a user name and password, "
                    "which they lack",
                    f"store a user name and password for {registry} (`kiln login {registry}`)",
                )
            return f"{whose} were not sent: the registry did not ask for any", _AUTH_ACCESS
        if self._token_refused:
            return f"the token service {self._sent_to} refused {whose}", fix
        if self._sent_to != "registry":
            return (
                f"{whose} were sent to the token service {self._sent_to}, but its token does "
                "not allow this",
                _AUTH_ACCESS,
            )
        if status == 401:
            return f"the registry refused {whose}", fix
        return f"{whose} were accepted but do not allow this", _AUTH_ACCESS

    def _basic_token_request(
        self,
        realm: str,
        service: str | None,
        scopes: tuple[str, ...],
        creds: Credentials | None,
    ) -> Response:
        query: list[tuple[str, str]] = []
        if service:
            query.append(("service", service))
        query.extend(("scope", scope) for scope in scopes)
        headers: dict[str, str] = {}
        if creds is not None and creds.has_basic:
            assert creds.username is not None and creds.password is not None
            headers["Authorization"] = _basic(creds.username, creds.password)
            query.append(("account", creds.username))
        url = realm.partition("#")[0]
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        return self._send("GET", url, headers, None)

    def _refresh_token_request(
        self, realm: str, service: str | None, scopes: tuple[str, ...], refresh_token: str
    ) -> Response:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "kiln",
            "scope": " ".join(scopes),
        }
        if service:
            form["service"] = service
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self._send("POST", realm, headers, urlencode(form).encode())

    def _parse_token(self, response: Response) -> _Token:
        try:
            body = response.json()
            value = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or _DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            value, lifetime = None, 0.0
        finally:
            response.close()
        if not value or not isinstance(value, str):
            raise AuthError("the token service answered without a token", reference=self._registry)
        lifetime = max(lifetime - _TOKEN_MARGIN, lifetime / 2)
        return _Token(value, time.monotonic() + lifetime)


def _basic(username: str, password: str) -> str:
    """The ``Authorization`` value for basic auth."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
