"""``@record``: frozen dataclasses that cost no ``exec`` to define.

``@dataclasses.dataclass`` writes the source of ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__`` and ``__delattr__`` for every class and compiles each one: about a millisecond per
class on the 2-core test machine, 50 to 70 ms of every ``letsencrypt`` run for the ~50 message and
settings classes it imports, a fifth of a one-name ``certonly``. ``record`` gives the same classes
with methods made once, here, and bound to each class's field names: nothing is compiled when a
module defines a record.

What a record is, for its users, is what ``@dataclasses.dataclass(frozen=True, slots=True)`` makes:

- the same ``__init__`` (positional or keyword; ``kw_only``; defaults and ``default_factory``;
  ``field(init=False)``; ``__post_init__``), ``__repr__``, ``__eq__``, ``__hash__`` and
  ``__match_args__`` (a method the class defines itself is kept); assignment raises
  ``dataclasses.FrozenInstanceError``;
- ``__slots__`` (``slots=False`` keeps a ``__dict__``), with the pickling support dataclasses adds;
- ``dataclasses.fields``, ``replace``, ``asdict``, ``astuple`` and ``is_dataclass`` work on it, since
  its ``__dataclass_fields__`` holds ``dataclasses.Field`` objects;
- mypy checks it as a frozen dataclass (``typing.dataclass_transform``).

Only plain records are supported: no base class other than ``object`` (and ``Generic``), no ``order``,
no ``InitVar``. A class that needs more stays a stdlib dataclass; ``record`` refuses it at import time.
"""

from __future__ import annotations

import dataclasses
import inspect
import reprlib
from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar, TypeVar, dataclass_transform, overload

__all__ = ["record"]

_T = TypeVar("_T", bound=type)
_MISSING: Any = dataclasses.MISSING
_CLASS_VARIABLE = ("ClassVar", "typing.ClassVar", "t.ClassVar")
_OWN_METHODS = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__")


@overload
def record(cls: _T, /) -> _T: ...


@overload
def record(*, eq: bool = True, kw_only: bool = False, slots: bool = True) -> Callable[[_T], _T]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: Any = None, /, *, eq: bool = True, kw_only: bool = False, slots: bool = True) -> Any:
    """Make ``cls`` a frozen (by default slotted) dataclass; see the module's docstring."""

    def wrap(cls: type) -> type:
        return _make(cls, eq=eq, kw_only=kw_only, slots=slots)

    return wrap if cls is None else wrap(cls)


def _make(cls: type, *, eq: bool, kw_only: bool, slots: bool) -> type:
    if cls.__bases__ not in ((object,),) and not all(base.__module__ == "typing" for base in cls.__bases__):
        raise TypeError(f"@record class {cls.__qualname__} has a base class; use @dataclasses.dataclass")
    for name in ("__setattr__", "__delattr__"):
        if name in cls.__dict__:
            raise TypeError(f"cannot overwrite attribute {name} in class {cls.__qualname__}")
    fields = _fields(cls, kw_only)
    names = tuple(fields)
    namespace = dict(cls.__dict__)
    for name in ("__dict__", "__weakref__"):
        namespace.pop(name, None)
    if slots:
        for name in names:
            namespace.pop(name, None)
        namespace["__slots__"] = names
    else:
        for name, field in fields.items():  # like dataclasses: a plain default stays a class attribute
            if field.default is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = field.default
    namespace["__dataclass_fields__"] = fields
    own = cls.__dict__  # like dataclasses, what the class writes itself is kept
    if "__match_args__" not in own:
        namespace["__match_args__"] = tuple(f.name for f in fields.values() if f.init and not f.kw_only)
    explicit_hash = own.get("__hash__") is not None
    if "__init__" not in own:
        namespace["__init__"] = _init(cls.__qualname__, fields, "__post_init__" in own)
    if "__repr__" not in own:
        namespace["__repr__"] = _repr(tuple(f.name for f in fields.values() if f.repr))
    namespace["__setattr__"] = _frozen_setattr
    namespace["__delattr__"] = _frozen_delattr
    if eq:
        compared = tuple(f.name for f in fields.values() if f.compare)
        if "__eq__" not in own:
            namespace["__eq__"] = _eq(attrgetter(*compared) if compared else (lambda _self: ()))
        if not explicit_hash:
            hashed = tuple(f.name for f in fields.values() if (f.compare if f.hash is None else f.hash))
            namespace["__hash__"] = _hash(attrgetter(*hashed) if hashed else (lambda _self: ()))
    if slots:
        namespace["__getstate__"] = _getstate
        namespace["__setstate__"] = _setstate
    made = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    for name in (*_OWN_METHODS, "__getstate__", "__setstate__"):
        method = made.__dict__.get(name)
        if callable(method) and "<locals>" in getattr(method, "__qualname__", ""):  # made for this class
            method.__qualname__ = f"{cls.__qualname__}.{name}"
    return made


def _fields(cls: type, kw_only: bool) -> dict[str, dataclasses.Field[Any]]:
    fields: dict[str, dataclasses.Field[Any]] = {}
    seen_default = False
    for name, annotation in inspect.get_annotations(cls).items():
        if _is_class_variable(annotation):
            continue
        declared = cls.__dict__.get(name, _MISSING)
        field: dataclasses.Field[Any] = (
            declared if isinstance(declared, dataclasses.Field) else dataclasses.field(default=declared)
        )
        if field.default is not _MISSING and type(field.default).__hash__ is None:
            raise ValueError(f"mutable default {type(field.default)} for field {name} of {cls.__qualname__} "
                             "is not allowed: use default_factory")
        field.name = name
        field.type = annotation
        field._field_type = dataclasses._FIELD  # type: ignore[attr-defined]  # what dataclasses.fields() selects
        if field.kw_only is _MISSING:
            field.kw_only = kw_only
        has_default = field.default is not _MISSING or field.default_factory is not _MISSING
        if field.init and not field.kw_only:
            if seen_default and not has_default:
                raise TypeError(f"non-default argument {name!r} follows default argument in {cls.__qualname__}")
            seen_default = seen_default or has_default
        fields[name] = field
    return fields


def _is_class_variable(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.split("[", 1)[0].strip() in _CLASS_VARIABLE
    return annotation is ClassVar or getattr(annotation, "__origin__", None) is ClassVar


def _init(qualname: str, fields: dict[str, dataclasses.Field[Any]], post_init: bool) -> Callable[..., None]:
    arguments = tuple(f for f in fields.values() if f.init)
    positional = tuple(f.name for f in arguments if not f.kw_only)
    accepted = frozenset(f.name for f in arguments)
    required = tuple(f.name for f in arguments if f.default is _MISSING and f.default_factory is _MISSING)
    defaulted: tuple[tuple[str, Any, Any], ...] = tuple(
        (f.name, f.default, f.default_factory) for f in arguments if f.name not in required
    )
    # field(init=False) with a default is always set; without one, __post_init__ sets it
    computed: tuple[tuple[str, Any, Any], ...] = tuple(
        (f.name, f.default, f.default_factory) for f in fields.values()
        if not f.init and (f.default is not _MISSING or f.default_factory is not _MISSING)
    )
    total = len(arguments)
    setter = object.__setattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if args:
            if len(args) > len(positional):
                raise TypeError(f"{qualname}.__init__() takes {len(positional) + 1} positional arguments "
                                f"but {len(args) + 1} were given")
            for name, value in zip(positional, args, strict=False):
                if name in kwargs:
                    raise TypeError(f"{qualname}.__init__() got multiple values for argument {name!r}")
                setter(self, name, value)
        if not accepted.issuperset(kwargs):
            unexpected = next(name for name in kwargs if name not in accepted)
            raise TypeError(f"{qualname}.__init__() got an unexpected keyword argument {unexpected!r}")
        for name, value in kwargs.items():
            setter(self, name, value)
        if len(args) + len(kwargs) < total:  # arguments and keywords are distinct names: some are left
            given = set(positional[:len(args)]).union(kwargs)
            missing = [name for name in required if name not in given]
            if missing:
                listed = ", ".join(repr(name) for name in missing)
                raise TypeError(f"{qualname}.__init__() missing {len(missing)} required "
                                f"argument{'s' if len(missing) > 1 else ''}: {listed}")
            for name, default, factory in defaulted:
                if name not in given:
                    setter(self, name, default if factory is _MISSING else factory())
        if computed:
            for name, default, factory in computed:
                setter(self, name, default if factory is _MISSING else factory())
        if post_init:
            self.__post_init__()

    return __init__


def _repr(shown: tuple[str, ...]) -> Callable[[Any], str]:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        parts = []
        for name in shown:
            try:
                parts.append(f"{name}={getattr(self, name)!r}")
            except AttributeError:  # a field(init=False) that __post_init__ did not set
                parts.append(f"{name}=<unset>")
        return f"{type(self).__qualname__}({', '.join(parts)})"

    return __repr__


def _eq(values: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _hash(values: Callable[[Any], Any]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(values(self))

    return __hash__


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, name) for name in self.__dataclass_fields__]


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self.__dataclass_fields__, state, strict=True):
        object.__setattr__(self, name, value)
