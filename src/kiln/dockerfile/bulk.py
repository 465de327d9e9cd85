"""``frozen_instance``: a frozen dataclass instance from its field dict, without ``__init__``.

Why it exists: the parser makes a typed instruction (10 to 13 fields) for every Dockerfile
instruction, and CPython 3.11's generated ``__init__`` of a frozen dataclass sets each field
through ``object.__setattr__`` (about 0.15 µs a field on the 2-core CI machine, about 2 µs an
instruction). With that ``__init__`` (and ``slots``), 2.5 MB of the ``stages`` shape of
``bench/parse_dockerfile.py`` took 1.29 s instead of 1.06 s and the ``instructions`` shape
0.72 s instead of 0.60 s (medians of 5, interleaved): installing the dict the converter
builds anyway as the instance's ``__dict__`` is what this function does. The instruction
classes stay ordinary frozen dataclasses (without ``slots``, which would leave no
``__dict__`` to install): equality, ``repr``, ``replace`` and ``fields`` behave the same, and
everything else constructs them normally.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["frozen_instance"]

T = TypeVar("T")

_new = object.__new__
_set = object.__setattr__


def frozen_instance(cls: type[T], fields: dict[str, Any]) -> T:
    """An instance of the frozen dataclass ``cls`` holding ``fields`` (which it then owns).

    ``fields`` should name every field of ``cls``; when it holds fewer or more names, the
    class's own ``__init__`` is called instead, so defaults still apply and an unknown name
    is still a TypeError (``tests/dockerfile/test_bulk.py`` checks every converter passes
    every field).
    """
    if len(fields) != len(cls.__dataclass_fields__):  # type: ignore[attr-defined]
        return cls(**fields)
    instance: T = _new(cls)
    _set(instance, "__dict__", fields)
    return instance
