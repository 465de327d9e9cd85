"""Turn a failed registry exchange into a ``RegistryError`` that keeps what the registry said.

Why one place: the distribution spec's ``{"errors": [{"code", "message", "detail"}]}`` body is
how a user learns *why* a push or pull failed, and every request path must report all of it
the same way, with whether waiting could help (``temporary``), without echoing credentials.
Network failures get the same treatment: the message names the host, and for TLS and HTTPS
failures the remedy (as option data: the CLI spells it as a flag, the API as a keyword).
"""

from __future__ import annotations

import json
import time
from typing import Protocol

from kiln.errors import (
    AuthError,
    NameNotFound,
    NetworkError,
    RegistryDiagnostic,
    RegistryError,
    Remedy,
    TLSError,
)
from kiln.net import Response

#: Answers worth asking again: the registry (or something in front of it) is busy or failing.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
#: Codes saying an upload session is gone: a new upload may well succeed.
UPLOAD_LOST_CODES = frozenset({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})

_AUTH_HINT = (
    "check the credentials in your Docker config.json (DOCKER_CONFIG) or credential helper, and "
    "that they may access this repository"
)
_MAX_BODY = 64 * 1024
_MAX_RETRY_AFTER = 60.0


class CredentialReport(Protocol):
    """Says what happened to the credentials when a registry answered 401 or 403
    (``Authenticator.explain``): a clause for the message and a hint, never a secret."""

    def explain(self, status: int) -> tuple[str, str]: ...


def _body(response: Response) -> bytes:
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.iter_content(8192):
            chunks.append(chunk)
            total += len(chunk)
            if total >= _MAX_BODY:
                break
    except NetworkError:
        pass  # the body is only a diagnostic; never mask the real failure
    return b"".join(chunks)


def diagnostics(response: Response) -> tuple[RegistryDiagnostic, ...]:
    """Every entry of the ``errors`` array in ``response``'s JSON body (none if it has none)."""
    try:
        entries = json.loads(_body(response))["errors"]
    except (ValueError, TypeError, KeyError):
        return ()
    found: list[RegistryDiagnostic] = []
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and (entry.get("code") or entry.get("message")):
            code, message = str(entry.get("code") or ""), str(entry.get("message") or "")
            found.append(RegistryDiagnostic(code, message, entry.get("detail")))
    return tuple(found)


def retry_after(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header (delta seconds or an HTTP date) into seconds (capped)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    import email.utils  # rare (an HTTP date), and about 6 ms to import

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(_MAX_RETRY_AFTER, max(0.0, when.timestamp() - time.time()))


def response_error(
    response: Response,
    *,
    reference: str,
    action: str,
    credentials: CredentialReport | None = None,
) -> RegistryError:
    """A ``RegistryError`` (``AuthError`` for 401/403) describing ``action`` failing.

    It keeps every diagnostic the registry sent and says whether the failure is temporary. For
    401/403, ``credentials`` adds whether credentials were sent, for which registry and from
    where; the status itself is left to ``RegistryError`` (shown once).
    """
    found = diagnostics(response)
    status = response.status_code
    detail = f"{action} failed"
    messages = [item.message for item in found if item.message]
    if messages:
        detail += ": " + "; ".join(messages)
    wait = retry_after(response.headers.get("Retry-After"))
    response.close()
    if status in (401, 403):
        auth_hint = _AUTH_HINT
        if credentials is not None:
            note, auth_hint = credentials.explain(status)
            detail += f"; {note}"
        return AuthError(
            detail, reference=reference, status=status, diagnostics=found, hint=auth_hint
        )
    lost = any(item.code in UPLOAD_LOST_CODES for item in found)
    return RegistryError(
        detail,
        reference=reference,
        status=status,
        diagnostics=found,
        temporary=status in RETRYABLE_STATUS or lost,
        retry_after=wait,
        hint="check the repository name and tag or digest" if status == 404 else None,
    )


def host_of(url: str) -> str:
    """``host[:port]`` of a URL: what ``insecure_registries`` and friends name."""
    return url.split("://", 1)[-1].split("/", 1)[0]


def network_error(
    exc: NetworkError, what: str, url: str, reference: str, *, attempts: int = 1
) -> RegistryError:
    """A ``RegistryError`` for a request (``what``: method and URL, no query) that failed below
    HTTP after ``attempts`` tries, keeping whether it is temporary and naming the option that
    may fix it."""
    if isinstance(exc, TLSError):
        return _tls_error(exc, url, reference)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    message = f"{what} failed{tries}: {exc}"
    if isinstance(exc, NameNotFound):
        hint = "check the host name (and, for a proxy, the *_PROXY variables)"
        return RegistryError(message, reference=reference, hint=hint)
    if not exc.temporary:
        return RegistryError(message, reference=reference)
    if not url.startswith("https://"):
        hint = "check that the registry is reachable"
        return RegistryError(message, reference=reference, temporary=True, hint=hint)
    # Over HTTPS, the registry may serve plain HTTP only (on another port, so nothing answers
    # TLS here): the hint names the option that says so.
    return RegistryError(
        message,
        reference=reference,
        temporary=True,
        hint="check that the registry is reachable (and, if it serves plain HTTP, mark it "
        "with {0})",
        remedies=[Remedy("insecure_registries", [host_of(url)])],
    )


def _tls_error(exc: TLSError, url: str, reference: str) -> RegistryError:
    """A ``RegistryError`` explaining a TLS failure and which option addresses it."""
    text = str(exc).lower()
    host = host_of(url)
    remedies: tuple[Remedy, ...]
    if "wrong version number" in text or "record layer failure" in text:
        problem = "the registry answered in plain HTTP, not HTTPS"
        hint = f"if {host} really serves plain HTTP, mark it with {{0}}"
        remedies = (Remedy("insecure_registries", [host]),)
    elif "certificate verify failed" in text:
        reason = str(exc).partition("certificate verify failed:")[2].split("(_ssl")[0].strip()
        problem = "its TLS certificate could not be verified" + (f" ({reason})" if reason else "")
        hint = "trust its CA with {0}, or (unsafe) {1}"
        remedies = (
            Remedy("registry_certificates", {host: "/path/ca.crt"}),
            Remedy("skip_tls_verify_registries", [host]),
        )
    elif "certificate required" in text or "bad certificate" in text or "unknown ca" in text:
        problem = "the registry rejected the TLS client certificate (or none was sent)"
        hint = "give one with {0}"
        remedies = (
            Remedy("registry_client_certs", {host: ("/path/client.crt", "/path/client.key")}),
        )
    else:
        problem = "the TLS handshake failed"
        hint = "check the registry's TLS setup and its CA ({0})"
        remedies = (Remedy("registry_certificates"),)
    return RegistryError(
        f"SSLError talking to {host}: {problem}", reference=reference, hint=hint, remedies=remedies
    )
