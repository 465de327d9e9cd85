"""The retry layer: the one place kiln decides to try a registry request (or operation) again.

Why one place: registries (and the blob stores behind them) fail transiently under load; a build
must survive a 503, a dropped connection or a download cut short, but must never hammer a
registry or repeat what can only fail again (a 404, a TLS failure, a name DNS does not know).
Whether a failure is worth another try is data on the error (``temporary``); how often and how
long to wait is the ``RetryPolicy``; what to repeat is the caller's: one request (``send``), or
an operation of several steps such as a download into a file or a resumable upload (``run``,
with an ``Attempt`` telling the operation which try this is, so it can resume or rewind).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from kiln.errors import NetworkError, RegistryError
from kiln.net import Response
from kiln.registry.problems import RETRYABLE_STATUS, network_error, retry_after
from kiln.registry.session import AuthenticatedSession, Request

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait: ``base * 2**attempt`` plus jitter, capped."""

    retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, attempt: int, asked: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based); ``asked`` is what the
        server said in ``Retry-After`` (honoured, already capped)."""
        if asked is not None:
            return asked
        backoff: float = min(self.max_delay, self.base_delay * 2**attempt)
        return backoff / 2 + random.uniform(0, backoff / 2)


@dataclass(frozen=True)
class Attempt:
    """Which try an operation is on: ``number`` (0 first) and whether it is the ``last``."""

    number: int
    last: bool


class _RetryableAnswer(Exception):
    """A response whose status asks for another try (raised inside ``send`` only)."""

    temporary = True

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.retry_after = retry_after(response.headers.get("Retry-After"))
        response.close()


class Retrying:
    """Sends requests through the auth layer, retrying what is ``temporary``."""

    def __init__(
        self,
        session: AuthenticatedSession,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session
        self.policy = policy
        self.sleep = sleep

    def send(self, request: Request, *, retry: bool = True) -> Response:
        """Send, retrying on temporary failures (connection errors, an answer cut short) and
        408/429/5xx answers; return the last response, which the caller interprets. Failures
        below HTTP become ``RegistryError``s naming the request and the remedy.

        ``retry=False`` sends exactly once and lets network errors through as they are: for a
        request inside an operation given to ``run``, which decides about retries and names
        the failure (with how many attempts were made).
        """
        if not retry:
            return self.session.send(request)

        def once(attempt: Attempt) -> Response:
            response = self.session.send(request)
            if response.status_code in RETRYABLE_STATUS and not attempt.last:
                raise _RetryableAnswer(response)
            return response

        return self.run(once, request)

    def run(
        self, operation: Callable[[Attempt], T], request: Request, *, retries: int | None = None
    ) -> T:
        """Call ``operation`` until it returns, retrying (after a backoff) while it raises a
        temporary error and the budget lasts; ``request`` names what failed in the error."""
        budget = self.policy.retries if retries is None else retries
        number = 0
        while True:
            try:
                return operation(Attempt(number, number >= budget))
            except (NetworkError, RegistryError, _RetryableAnswer) as exc:
                if not exc.temporary or number >= budget:
                    if isinstance(exc, NetworkError):
                        raise self._network_error(exc, request, number) from exc
                    raise
                self.sleep(self.policy.delay(number, exc.retry_after))
            number += 1

    def _network_error(self, exc: NetworkError, request: Request, number: int) -> RegistryError:
        url = self.session.absolute(request.url)
        what = f"{request.method} {url.split('?', 1)[0]}"
        return network_error(exc, what, url, request.where, attempts=number + 1)
