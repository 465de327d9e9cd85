"""Turn a failed registry response into a ``RegistryError`` with the spec's error code.

Why one place: the distribution spec's ``{"errors": [{"code", "message"}]}`` body (or a bearer
challenge's ``error=`` parameter) is how a user learns *why* a push or pull failed, and every
request path must report it the same way, without ever echoing credentials.
"""

from __future__ import annotations

import json
from typing import Protocol

from kiln.errors import AuthError, RegistryError
from kiln.net import Response

_AUTH_HINT = (
    "check the credentials in your Docker config.json (DOCKER_CONFIG) or credential helper, and "
    "that they may access this repository"
)
_MAX_BODY = 64 * 1024


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
    except OSError:  # kiln.net's errors are OSErrors too
        pass  # the body is only a diagnostic; never mask the real failure
    return b"".join(chunks)


def error_code(response: Response) -> tuple[str | None, str | None]:
    """The first distribution error code and message in ``response``'s JSON body, if any."""
    try:
        first = json.loads(_body(response))["errors"][0]
        code = str(first.get("code") or "") or None
        return code, str(first.get("message") or "") or None
    except (ValueError, AttributeError, IndexError, TypeError, KeyError):
        return None, None


def response_error(
    response: Response,
    *,
    reference: str,
    action: str,
    credentials: CredentialReport | None = None,
) -> RegistryError:
    """A ``RegistryError`` (``AuthError`` for 401/403) describing ``action`` failing.

    For 401/403, ``credentials`` adds whether credentials were sent, for which registry and
    from where; the status itself is left to ``RegistryError`` (shown once).
    """
    code, message = error_code(response)
    status = response.status_code
    detail = f"{action} failed"
    if message:
        detail += f": {message}"
    response.close()
    if status in (401, 403):
        auth_hint = _AUTH_HINT
        if credentials is not None:
            note, auth_hint = credentials.explain(status)
            detail += f"; {note}"
        return AuthError(detail, reference=reference, status=status, code=code, hint=auth_hint)
    hint = None
    if status == 404:
        hint = "check the repository name and tag or digest"
    return RegistryError(detail, reference=reference, status=status, code=code, hint=hint)
