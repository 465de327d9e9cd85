"""The ``Healthcheck`` object of an image config, in Docker's JSON shape.

Why a value type: HEALTHCHECK options are durations that Docker stores as integer nanoseconds and
omits when zero; ``HEALTHCHECK NONE`` is the test ``["NONE"]`` which disables an inherited check.
Encoding those rules once keeps the build's dispatch code free of JSON details.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kiln.errors import ImageFormatError

_DURATIONS = (
    ("interval_ns", "Interval"),
    ("timeout_ns", "Timeout"),
    ("start_period_ns", "StartPeriod"),
    ("start_interval_ns", "StartInterval"),
)


@dataclass(frozen=True)
class Healthcheck:
    """A container health check.

    ``test`` is ``("CMD", arg, ...)``, ``("CMD-SHELL", command)`` or ``("NONE",)``.
    """

    test: tuple[str, ...]
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0
    retries: int = 0

    @classmethod
    def disabled(cls) -> Healthcheck:
        """``HEALTHCHECK NONE``: turns off a check inherited from the base image."""
        return cls(test=("NONE",))

    @classmethod
    def from_dict(cls, data: Any) -> Healthcheck:
        """Read Docker's ``Healthcheck`` object (missing durations are zero = default)."""
        if not isinstance(data, Mapping):
            raise ImageFormatError(f"Healthcheck must be an object, not {data!r}")
        values: dict[str, int] = {}
        for attr, key in (*_DURATIONS, ("retries", "Retries")):
            value = data.get(key) or 0
            if not isinstance(value, int):
                raise ImageFormatError(f"Healthcheck {key} must be an integer, not {value!r}")
            values[attr] = value
        test = data.get("Test") or ()
        return cls(test=tuple(str(t) for t in test), **values)

    def to_dict(self) -> dict[str, Any]:
        """Docker's JSON object; zero durations and retries are omitted as Docker does."""
        out: dict[str, Any] = {"Test": list(self.test)}
        for attr, key in _DURATIONS:
            if getattr(self, attr):
                out[key] = getattr(self, attr)
        if self.retries:
            out["Retries"] = self.retries
        return out
