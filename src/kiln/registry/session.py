"""The auth layer: one request to the registry, with the credentials it asks for.

Why a layer: the distribution spec lets a registry demand basic auth or a bearer token per
scope, and say so only in a 401's challenge. This layer sits on the HTTP session (which follows
redirects and drops ``Authorization`` on the way to another host) and below the retry layer (a
retry repeats the whole authenticated request). It learns the challenge once (``GET /v2/``),
attaches the ``Authorization`` header to requests for the registry's own host, and answers a
401 by updating the challenge and sending the request once more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

from kiln.errors import RegistryError, Remedy
from kiln.net import Body, Response
from kiln.registry.auth import Authenticator
from kiln.registry.credentials import Credentials
from kiln.registry.problems import response_error


class HttpSession(Protocol):
    """What the auth layer sends through: a ``kiln.net.Session`` (or a scripted one in tests)."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | Callable[[], BinaryIO] | None = None,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
        follow_redirects: bool = False,
    ) -> Response: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Request:
    """One registry request: what to send, the token ``scopes`` it needs, and ``where`` (the
    reference named in errors). ``url`` is absolute or a path on the registry."""

    method: str
    url: str
    where: str
    scopes: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Body = None
    stream: bool = False


class AuthenticatedSession:
    """Sends ``Request``s to one registry (``base_url``) with the credentials it asks for."""

    def __init__(
        self,
        session: HttpSession,
        base_url: str,
        registry: str,
        credentials: Credentials | None,
        timeout: tuple[float, float],
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.auth = Authenticator(self.token_request, registry, credentials)
        self._host = urlsplit(base_url).netloc
        self._timeout = timeout
        self._pinged = False
        self._ping_lock = threading.Lock()

    def absolute(self, url: str) -> str:
        """``url`` made absolute on the registry."""
        return url if "://" in url else self.base_url + url

    def send(self, request: Request) -> Response:
        """Send ``request``, re-authenticating once on a 401 from the registry itself."""
        self._ping(request.where)
        url = self.absolute(request.url)
        for attempt in range(2):
            headers = dict(request.headers)
            if urlsplit(url).netloc == self._host and url.startswith(self.base_url):
                headers.update(self.auth.headers(request.scopes))
            response = self._http(request.method, url, headers, request.body, request.stream)
            if (
                response.status_code != 401
                or attempt == 1
                or urlsplit(response.url).netloc != self._host
                or not self.auth.update(response, request.scopes)
            ):
                return response
            response.close()
        raise AssertionError("unreachable")

    def token_request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        """A request to a token service (only the headers the authenticator gives)."""
        return self._http(method, url, headers, body, False)

    def _http(
        self, method: str, url: str, headers: Mapping[str, str], body: Body, stream: bool
    ) -> Response:
        return self.session.request(
            method,
            url,
            headers=headers,
            body=body,
            stream=stream,
            timeout=self._timeout,
            follow_redirects=True,
        )

    def _ping(self, where: str) -> None:
        """Learn how the registry authenticates (GET /v2/) before the first real request."""
        with self._ping_lock:
            if self._pinged:
                return
            url = f"{self.base_url}/v2/"
            with self._http("GET", url, {}, None, False) as response:
                if response.status_code == 401:
                    self.auth.update(response, [])
                elif response.status_code == 400 and url.startswith("http:"):
                    raise RegistryError(
                        "the registry rejected a plain-HTTP request (it probably speaks HTTPS)",
                        reference=where,
                        status=400,
                        hint=f"do not mark {self._host} insecure; trust its certificate with "
                        "{0} if needed",
                        remedies=(Remedy("registry_certificates", {self._host: "/path/ca.crt"}),),
                    )
                elif response.status_code not in (200, 404):
                    # 404: some proxies only serve repository paths; let real requests decide.
                    raise response_error(
                        response,
                        reference=where,
                        action="contacting the registry",
                        credentials=self.auth,
                    )
            self._pinged = True
