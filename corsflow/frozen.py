"""Frozen dataclasses built faster: the records made for every exchange.

A frozen dataclass's generated ``__init__`` sets each field with ``object.__setattr__(self,
name, value)``, which looks the name up through the class's MRO on every call: over 200 ns a
field on this project's machine, five times a mutable dataclass's. The analysis builds some
seventy fields' worth of such records per exchange (the exchange, its verdict, the request's
view, the trace, the cache's answers), a sixth of its time. :func:`quick_init` gives a frozen
``slots=True`` dataclass an equivalent ``__init__`` that sets each slot through its own
descriptor, found once: the same signature, defaults and default factories, the instances
exactly as before (equal, hashed and immutable alike), in about half the time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_FACTORY = object()
"""The default of a parameter whose field has a default factory (as dataclasses do)."""


def quick_init(cls: type[T]) -> type[T]:
    """Give the frozen ``slots=True`` dataclass ``cls`` the faster ``__init__``; the one
    dataclasses wrote stays reachable as ``cls.__init__.dataclass_init`` (for tests)."""
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    if not (params.frozen and params.init and "__slots__" in cls.__dict__):
        raise TypeError(f"{cls.__qualname__}: quick_init is for frozen slots dataclasses")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__qualname__}: __post_init__ is not supported")
    names: dict[str, object] = {"_FACTORY": _FACTORY}
    args: list[str] = []
    body: list[str] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.kw_only:
            raise TypeError(f"{cls.__qualname__}.{f.name}: keyword-only fields are not supported")
        setter = f"_set_{f.name}"
        names[setter] = cls.__dict__[f.name].__set__  # the slot's member descriptor
        value = f.name
        if f.default is not dataclasses.MISSING:
            names[f"_default_{f.name}"] = f.default
            default = f"_default_{f.name}"
        elif f.default_factory is not dataclasses.MISSING:
            names[f"_factory_{f.name}"] = f.default_factory
            default = "_FACTORY"
            value = f"_factory_{f.name}() if {f.name} is _FACTORY else {f.name}"
        else:
            default = ""
        if not f.init:
            if not default:
                continue  # left unset, as dataclasses leave it
            value = f"_factory_{f.name}()" if default == "_FACTORY" else default
        else:
            args.append(f"{f.name}={default}" if default else f.name)
        body.append(f"{setter}(self, {value})")
    source = (f"def make({', '.join(names)}):\n"
              f" def __init__(self, {', '.join(args)}):\n"
              + "".join(f"  {line}\n" for line in body or ["pass"])
              + " return __init__\n")
    scope: dict[str, Any] = {}
    exec(source, {}, scope)  # noqa: S102 - our own source, built from the field names
    make: Callable[..., Callable[..., None]] = scope["make"]
    init = make(**names)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    init.dataclass_init = cls.__init__  # type: ignore[attr-defined]
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
