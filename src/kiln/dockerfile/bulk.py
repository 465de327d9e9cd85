"""Fast construction of frozen slotted dataclasses, and the shared empty flag mapping.

Why it exists: the parser makes a typed instruction (10 to 16 fields) for every Dockerfile
line, and a ``Stage`` for every FROM. CPython 3.11's generated ``__init__`` of a frozen
dataclass sets each field through ``object.__setattr__`` (about 0.13 µs a field on the
2-core CI machine: 1.8 µs for a RUN). ``maker(cls)`` returns a function, generated once per
class, that fills an instance of a mutable twin of ``cls`` with plain slot stores and then
makes it a ``cls`` (0.26 µs for a RUN; storing each field through its slot descriptor's
``__set__`` took 0.7 µs). The classes stay ordinary frozen slotted dataclasses: equality,
``repr``, ``replace`` and ``fields`` behave the same, and everything else constructs them
normally.

Slots rather than an instance ``__dict__`` (what this module installed before): a RUN with
its dict took 520 bytes, slotted 136; 10 MB of the ``stages`` shape of
``bench/parse_dockerfile.py`` (357,000 stages) needed 680 MB before, mostly dicts, and the
kernel's time to hand out that memory was a fifth of the parse.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

__all__ = ["EMPTY_FLAGS", "FrozenFlags", "maker"]

T = TypeVar("T")

_MAKERS: dict[tuple[object, ...], Callable[..., Any]] = {}


def maker(
    cls: type[T], head: str = "", prologue: str = "", *, positional: bool = False, **computed: str
) -> Callable[..., T]:
    """A function ``make(<head>, *, <fields>)`` returning a ``cls`` holding those values.

    Each field named in ``computed`` is set to that Python expression, evaluated in ``make``
    (over the ``head`` parameters and what ``prologue`` assigns, e.g. ``ConvertContext``'s
    node); every other field is a keyword-only parameter (``positional``: positional or
    keyword, in field order), with the field's default if it has one (a ``default_factory``
    is not applied: such a field is required). A missing or unknown field is a TypeError, as
    with the class's own ``__init__``; ``__post_init__`` is not run (the parsed classes have
    none). Makers are cached per class and arguments.
    """
    key = (cls, head, prologue, positional, tuple(sorted(computed.items())))
    made = _MAKERS.get(key)
    if made is None:
        made = _MAKERS[key] = _generate(cls, head, prologue, positional, computed)
    return made


def _generate(
    cls: type[T], head: str, prologue: str, positional: bool, computed: dict[str, str]
) -> Callable[..., T]:
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls, **_NAMESPACE}
    namespace["building"] = _building_twin(cls)
    parameters = [head] if head else []
    keyword: list[str] = []
    body = [f"    {prologue}\n" if prologue else "", "    self = new(building)\n"]
    for index, field in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        name = field.name
        body.append(f"    self.{name} = {computed.get(name, name)}\n")
        if name in computed:
            continue
        if field.default is dataclasses.MISSING:
            keyword.append(name)
        else:
            namespace[f"default{index}"] = field.default
            keyword.append(f"{name}=default{index}")
    if keyword:
        parameters += keyword if positional else ["*", *keyword]
    body.append("    self.__class__ = cls\n")
    text = f"def make({', '.join(parameters)}):\n{''.join(body)}    return self\n"
    exec(text, namespace)  # generated from field names, as dataclasses does
    make: Callable[..., T] = namespace["make"]
    make.__qualname__ = f"maker({cls.__qualname__})"
    return make


def _building_twin(cls: type[T]) -> type[T]:
    """A subclass of ``cls`` with the same slots and plain attribute assignment.

    ``make`` fills an instance of it with ordinary ``self.x = v`` stores (which CPython
    specializes to a direct slot write, about 15 ns), then assigns ``__class__ = cls``: the
    twin adds no slot, so the layouts match and the assignment is allowed. The instance is
    then a plain frozen ``cls``, the twin is never seen outside ``make``. Both
    ``__setattr__`` and ``__delattr__`` must be ``object``'s for the stores to be plain
    (together they make the type's one ``tp_setattro``).
    """
    namespace = {
        "__slots__": (),
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__module__": cls.__module__,
    }
    return type(f"_Building{cls.__name__}", (cls,), namespace)


class FrozenFlags(dict[str, str]):
    """A ``dict`` that refuses changes: what instructions without ``--flag`` words share.

    One empty mapping for every such instruction instead of an empty dict each (80 bytes a
    line); it is still a ``dict``, so it compares, prints and copies like the ones it replaces.
    """

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("an instruction's flags cannot be changed")

    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse


#: The flags of an instruction written without any ``--flag``.
EMPTY_FLAGS: dict[str, str] = FrozenFlags()

#: Names the ``computed`` expressions of ``maker`` may use.
_NAMESPACE: dict[str, Any] = {"EMPTY_FLAGS": EMPTY_FLAGS, "dict": dict}
