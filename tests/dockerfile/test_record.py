"""``record`` classes behave as the dataclasses they stand in for (kiln.dockerfile._record)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from kiln.dockerfile._record import record


def _pair(frozen: bool, kw_only: bool) -> tuple[type[Any], type[Any]]:
    """The same class body made by ``dataclass`` and by ``record``."""

    def body() -> dict[str, Any]:
        return {
            "__annotations__": {"a": "int", "b": "str", "c": "dict[str, str]"},
            "b": "x",
            "c": field(default_factory=dict),
        }

    real = dataclass(frozen=frozen, kw_only=kw_only)(type("Value", (), body()))
    ours = record(frozen=frozen, kw_only=kw_only)(type("Value", (), body()))
    return real, ours


@pytest.mark.parametrize("frozen", [True, False])
@pytest.mark.parametrize("kw_only", [True, False])
def test_behaves_like_a_dataclass(frozen: bool, kw_only: bool) -> None:
    real, ours = _pair(frozen, kw_only)
    for cls in (real, ours):
        assert dataclasses.is_dataclass(cls)
    a, b = real(a=1), ours(a=1)
    assert repr(a) == repr(b)
    assert [(f.name, f.type, f.kw_only) for f in dataclasses.fields(a)] == [
        (f.name, f.type, f.kw_only) for f in dataclasses.fields(b)
    ]
    assert real.__match_args__ == ours.__match_args__
    assert (real.__hash__ is None) == (ours.__hash__ is None)
    assert b == ours(a=1) and b != ours(a=2) and b != a
    assert b.c is not ours(a=1).c  # a factory default is made per instance
    assert dataclasses.asdict(b) == dataclasses.asdict(a)
    assert dataclasses.replace(b, b="y") == ours(a=1, b="y")
    assert copy.deepcopy(ours(a=3, c={"k": "v"})) == ours(a=3, c={"k": "v"})
    if not kw_only:
        assert ours(1, "z") == ours(a=1, b="z")
    with pytest.raises(TypeError):
        ours()  # a is required
    with pytest.raises(TypeError):
        ours(a=1, nope=2)
    if frozen:
        with pytest.raises(dataclasses.FrozenInstanceError):
            b.a = 2
    else:
        b.a = 2
        assert b == ours(a=2)


def test_subclass_fields_follow_the_base_ones() -> None:
    @record(frozen=True, kw_only=True)
    class Base:
        keyword: str
        flags: dict[str, str] = field(default_factory=dict)

    @record(frozen=True, kw_only=True)
    class Child(Base):
        value: int = 0

    child = Child(keyword="RUN", value=2)
    assert [f.name for f in dataclasses.fields(child)] == ["keyword", "flags", "value"]
    assert repr(child).endswith("Child(keyword='RUN', flags={}, value=2)")
    assert child != Base(keyword="RUN")
    with pytest.raises(TypeError):
        hash(child)  # as with a dataclass: the flags dict is unhashable


def test_hash_of_frozen_values_follows_equality() -> None:
    @record(frozen=True)
    class Point:
        x: int
        y: int = 0

    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert len({Point(1), Point(1, 0), Point(2)}) == 2


@pytest.mark.parametrize("frozen", [True, False])
@pytest.mark.parametrize("kw_only", [True, False])
def test_compiled_init_after_bulk_use_behaves_the_same(frozen: bool, kw_only: bool) -> None:
    from kiln.dockerfile import _record

    real, ours = _pair(frozen, kw_only)
    generic = ours.__init__
    made = [ours(a=i) for i in range(_record._COMPILE_AFTER + 1)]
    assert ours.__init__ is not generic  # bulk use compiled a specialised __init__
    assert [m.a for m in made] == list(range(_record._COMPILE_AFTER + 1))
    first, second = ours(a=1), ours(a=1)
    assert first == second and first.c is not second.c  # a fresh default_factory value
    assert repr(ours(a=2, b="y", c={"k": "v"})) == repr(real(a=2, b="y", c={"k": "v"}))
    if not kw_only:
        assert ours(3, "z") == ours(a=3, b="z")
    with pytest.raises(TypeError):
        ours()  # a required field is still required
    with pytest.raises(TypeError):
        ours(a=1, nope=2)
    if frozen:
        with pytest.raises(dataclasses.FrozenInstanceError):
            first.a = 5
