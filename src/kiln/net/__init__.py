"""kiln.net: HTTP for kiln, on the standard library's ``http.client`` (pooled, proxied, TLS).

Why a package of its own: both the registry client and the context downloaders speak HTTP, and
the import rules keep ``kiln.context`` from importing ``kiln.registry``. It holds only kiln's
policy (the keep-alive pool, which proxy a request takes, timeouts, redirects, how failures
are named); the framing is ``http.client``'s. Its errors are ``kiln.errors``' network classes.
"""

from kiln.net.proxy import Proxy, bypass, proxy_for
from kiln.net.response import Response
from kiln.net.session import DEFAULT_TIMEOUT, Body, Session, safe_url

__all__ = [
    "DEFAULT_TIMEOUT",
    "Body",
    "Proxy",
    "Response",
    "Session",
    "bypass",
    "proxy_for",
    "safe_url",
]
