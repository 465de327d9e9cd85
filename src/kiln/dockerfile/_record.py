"""``record``: the frozen dataclasses of this package, without generating code per class.

Why: ``@dataclass`` writes the source of ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``
and (frozen) ``__setattr__``/``__delattr__`` for every class and ``exec``s it, about 0.3 ms a
class; the parser's 29 value classes cost every kiln start about 9 ms that way. ``record``
gives a class the same behaviour from methods written once, driven by the class's list of
fields: keyword-only or positional ``__init__`` with defaults and ``default_factory``,
``repr`` as a dataclass prints it, ``==`` between instances of the same class, ``hash`` of the
fields when frozen, ``FrozenInstanceError`` on assignment, ``__match_args__``. It registers
real ``dataclasses.Field`` objects, so ``dataclasses.fields``, ``asdict``, ``replace`` and
``is_dataclass`` work as before. Type checkers see ``dataclasses.dataclass`` itself (the
modules import it as ``record`` under ``TYPE_CHECKING``).

Only what this package uses is supported: the ``frozen`` and ``kw_only`` options, plain
annotations (no ``ClassVar``/``InitVar``) and ``field(default=..., default_factory=...)``.
"""

from __future__ import annotations

import dataclasses
import inspect
import reprlib
import types
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_FIELDS = "__dataclass_fields__"
# Per class: (positional names, every field as (name, default, factory, kw_only)).
_SPEC = "_record_spec"
_MISSING: Any = dataclasses.MISSING


def record(*, frozen: bool = False, kw_only: bool = False) -> Callable[[type[T]], type[T]]:
    """Decorate a class like ``@dataclass(frozen=..., kw_only=...)``."""

    def wrap(cls: type[T]) -> type[T]:
        _process(cls, frozen=frozen, kw_only=kw_only)
        return cls

    return wrap


def _process(cls: type[Any], *, frozen: bool, kw_only: bool) -> None:
    fields: dict[str, dataclasses.Field[Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        fields.update(getattr(base, _FIELDS, None) or {})
    for name, annotation in inspect.get_annotations(cls).items():
        fields[name] = _make_field(cls, name, annotation, kw_only)
    setattr(cls, _FIELDS, fields)
    cls.__dataclass_params__ = types.SimpleNamespace(
        init=True,
        repr=True,
        eq=True,
        order=False,
        unsafe_hash=False,
        frozen=frozen,
        match_args=True,
        kw_only=kw_only,
        slots=False,
        weakref_slot=False,
    )
    spec = tuple((f.name, f.default, f.default_factory, bool(f.kw_only)) for f in fields.values())
    positional = tuple(name for name, _, _, kw in spec if not kw)
    setattr(cls, _SPEC, (positional, spec, tuple(fields)))
    own = cls.__dict__
    methods: dict[str, Any] = {
        "__init__": _init_frozen if frozen else _init,
        "__repr__": _repr,
        "__eq__": _eq,
        "__match_args__": positional,
    }
    for name, value in methods.items():
        if name not in own:
            setattr(cls, name, value)
    explicit_hash = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    if not explicit_hash:
        cls.__hash__ = _hash if frozen else None  # type: ignore[assignment]
    if frozen:
        cls.__setattr__ = _frozen_setattr  # type: ignore[assignment]
        cls.__delattr__ = _frozen_delattr  # type: ignore[assignment]


def _make_field(
    cls: type[Any], name: str, annotation: Any, kw_only: bool
) -> dataclasses.Field[Any]:
    if str(annotation).split("[")[0].split(".")[-1] in ("ClassVar", "InitVar"):
        raise TypeError(f"{cls.__name__}.{name}: record does not support {annotation}")
    default = cls.__dict__.get(name, _MISSING)
    if isinstance(default, dataclasses.Field):
        made = default
        if made.default is _MISSING:
            delattr(cls, name)  # a default_factory: instances always get their own value
        else:
            setattr(cls, name, made.default)
    else:
        made = dataclasses.field(default=default)
    made.name = name
    made.type = annotation
    made._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
    if made.kw_only is _MISSING:
        made.kw_only = kw_only
    return made


def _values(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The field values of one ``__init__`` call, in field order.

    ``kwargs`` is the call's own fresh dict, so it is consumed in place: this runs for every
    parsed node and instruction, and one pass with no intermediate copies keeps parsing cheap.
    """
    positional, spec, _ = getattr(type(self), _SPEC)
    if args:
        name = type(self).__qualname__
        if len(args) > len(positional):
            raise TypeError(
                f"{name}.__init__() takes {len(positional) + 1} positional arguments "
                f"but {len(args) + 1} were given"
            )
        for key, value in zip(positional, args, strict=False):
            if key in kwargs:
                raise TypeError(f"{name}.__init__() got multiple values for argument {key!r}")
            kwargs[key] = value
    values: dict[str, Any] = {}
    pop = kwargs.pop
    for field_name, default, factory, _ in spec:
        value = pop(field_name, _MISSING)
        if value is _MISSING:
            if default is not _MISSING:
                value = default
            elif factory is not _MISSING:
                value = factory()
            else:
                raise TypeError(
                    f"{type(self).__qualname__}.__init__() missing 1 required argument: "
                    f"{field_name!r}"
                )
        values[field_name] = value
    if kwargs:
        raise TypeError(
            f"{type(self).__qualname__}.__init__() got an unexpected keyword argument "
            f"{next(iter(kwargs))!r}"
        )
    return values


#: Instances of one class made through the generic ``__init__`` before it gets a compiled one.
_COMPILE_AFTER = 256
_COUNTS: dict[type, int] = {}


def _count(cls: type[Any], frozen: bool) -> None:
    """Give ``cls`` a compiled ``__init__`` once it is clearly used in bulk.

    A small Dockerfile never pays the ~0.3 ms ``exec`` per class that made ``record`` worth
    writing; a large one (hundreds of thousands of nodes) gets an ``__init__`` as fast as the
    one ``@dataclass`` writes, about four times faster than the generic one.
    """
    count = _COUNTS.get(cls, 0) + 1
    _COUNTS[cls] = count
    if count == _COMPILE_AFTER:
        compiled = _compile_init(cls, frozen)
        if compiled is not None:
            cls.__init__ = compiled


def _compile_init(cls: type[Any], frozen: bool) -> Callable[..., None] | None:
    spec = getattr(cls, _SPEC)[1]
    namespace: dict[str, Any] = {"__rec_missing": _MISSING}
    params: list[str] = []
    keywords: list[str] = []
    body: list[str] = []
    for name, default, factory, kw in spec:
        if default is not _MISSING:
            namespace[f"__rec_d_{name}"] = default
            param = f"{name}=__rec_d_{name}"
        elif factory is not _MISSING:
            namespace[f"__rec_f_{name}"] = factory
            param = f"{name}=__rec_missing"
            body.append(f"    if {name} is __rec_missing: {name} = __rec_f_{name}()")
        else:
            param = name
        (keywords if kw else params).append(param)
    if keywords:
        params += ["*", *keywords]
    names = [name for name, _, _, _ in spec]
    if frozen:
        pairs = ", ".join(f"{n!r}: {n}" for n in names)
        body.append(f"    self.__dict__.update({{{pairs}}})")
    else:
        body += [f"    self.{n} = {n}" for n in names]
    if getattr(cls, "__post_init__", None) is not None:
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"])
    try:
        exec(source, namespace)  # the source is built from field names only
    except SyntaxError:  # e.g. a positional field without default after one with: stay generic
        return None
    function: Callable[..., None] = namespace["__init__"]
    function.__qualname__ = f"{cls.__qualname__}.__init__"
    return function


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    _count(type(self), False)
    for name, value in _values(self, args, kwargs).items():
        setattr(self, name, value)
    post_init = getattr(self, "__post_init__", None)
    if post_init is not None:
        post_init()


def _init_frozen(self: Any, *args: Any, **kwargs: Any) -> None:
    _count(type(self), True)
    # Straight into the instance dict: what object.__setattr__ would do, without a call per field.
    self.__dict__.update(_values(self, args, kwargs))
    post_init = getattr(self, "__post_init__", None)
    if post_init is not None:
        post_init()


def _astuple(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in getattr(type(self), _SPEC)[2])


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in getattr(type(self), _SPEC)[2])
    return f"{type(self).__qualname__}({inner})"


def _eq(self: Any, other: object) -> Any:
    if other.__class__ is self.__class__:
        return _astuple(self) == _astuple(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(_astuple(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    # As a dataclass: any name on the decorated class itself, fields on undecorated subclasses.
    if _SPEC in type(self).__dict__ or name in getattr(type(self), _FIELDS):
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _frozen_delattr(self: Any, name: str) -> None:
    if _SPEC in type(self).__dict__ or name in getattr(type(self), _FIELDS):
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)
