"""One base for the objects that own something to release (a connection pool, a mount, a temp dir).

Why a base class: six classes repeated the same ``__enter__``/``__exit__`` pair around their
``close()``; with this base each one only says how it closes, and ``with`` works the same for all.
A leaf module, like ``kiln.errors``: every package may import it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Closeable(ABC):
    """Something to ``close()`` exactly when the ``with`` block that holds it ends."""

    @abstractmethod
    def close(self) -> None:
        """Release what this object holds; safe to call more than once."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
