"""Work a build starts on a thread of its own and may wait for later (or never).

Why a helper: the builder overlaps slow work with the build (the overlay probe with the base
pull, deleting the stages' directories and uploading the config with the push); each is a
daemon thread whose outcome, value or exception, is a future's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future


def in_background(name: str, function: Callable[..., None], *args: object) -> Future[None]:
    """Run ``function(*args)`` on a daemon thread; its outcome is the future's."""
    future: Future[None] = Future()

    def work() -> None:
        try:
            function(*args)
        except BaseException as exc:  # handed to whoever waits for the future
            future.set_exception(exc)
        else:
            future.set_result(None)

    threading.Thread(target=work, name=name, daemon=True).start()
    return future
