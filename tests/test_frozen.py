"""quick_init: the faster __init__ builds exactly what the dataclass's own would."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field

import pytest

from corsflow import analysis, flowmarks, model
from corsflow.engine import cache, events, fetch, infer
from corsflow.frozen import quick_init
from corsflow.ingest import http1
from corsflow.whatif import replay

MODULES = (model, events, infer, fetch, cache, analysis, http1, replay, flowmarks)
QUICK = sorted({cls for module in MODULES for cls in vars(module).values()
                if isinstance(cls, type) and hasattr(cls.__init__, "dataclass_init")},
               key=lambda cls: cls.__qualname__)


def test_the_records_built_per_exchange_have_it() -> None:
    names = {cls.__qualname__ for cls in QUICK}
    assert {"Exchange", "Headers", "Response", "ExchangeVerdict", "TraceStep",
            "RequestView", "Fed"} <= names


def _slots(obj: object) -> dict[str, object]:
    return {f.name: getattr(obj, f.name, "<unset>")
            for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


def _reference(cls: type, *args: object, **kw: object) -> object:
    obj = object.__new__(cls)
    cls.__init__.dataclass_init(obj, *args, **kw)  # type: ignore[misc]
    return obj


@pytest.mark.parametrize("cls", QUICK, ids=lambda cls: cls.__qualname__)
def test_same_signature_and_same_instances(cls: type) -> None:
    quick = inspect.signature(cls.__init__)
    ref = inspect.signature(cls.__init__.dataclass_init)  # type: ignore[attr-defined]
    assert [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in quick.parameters.values()] \
        == [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in ref.parameters.values()]
    required = [f for f in dataclasses.fields(cls) if f.init and f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
    values = [object() for _ in required]
    # Only the required fields: the defaults and the factories fill the rest.
    built, expected = cls(*values), _reference(cls, *values)
    assert _slots(built) == _slots(expected)
    for f, value in zip(required, values):
        assert getattr(built, f.name) is value
    # Every field given, by keyword.
    given = {f.name: object() for f in dataclasses.fields(cls) if f.init}
    assert _slots(cls(**given)) == _slots(_reference(cls, **given)) == {
        **_slots(expected), **given}
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, dataclasses.fields(cls)[0].name, None)
    with pytest.raises(TypeError):
        cls(*values, **{required[0].name: None}) if required else cls(1, **given)


def test_factories_give_a_new_value_each_time_and_unset_fields_stay_unset() -> None:
    @quick_init
    @dataclass(frozen=True, slots=True)
    class Record:
        name: str
        tags: list[str] = field(default_factory=list)
        count: int = 0
        memo: dict[str, int] = field(default_factory=dict, init=False)
        later: int = field(init=False, compare=False, repr=False)

    a, b = Record("a"), Record("b", count=2)
    assert a.tags == [] and a.tags is not b.tags and (a.count, b.count) == (0, 2)
    assert a.memo == {} and a.memo is not b.memo
    assert not hasattr(a, "later") and not hasattr(_reference(Record, "a"), "later")
    assert Record("c", ["x"]).tags == ["x"]
    assert Record("a") == a == _reference(Record, "a") != b


def test_instances_survive_pickling_and_replace() -> None:
    h = model.Headers((("Origin", "https://a.test"),))
    assert h.get("origin") == "https://a.test"  # the index, set after init, still works
    back = pickle.loads(pickle.dumps(h))
    assert back == h and back.get("origin") == "https://a.test"
    r = model.Response(204, h)
    assert dataclasses.replace(r, status=200) == model.Response(200, h)


def test_it_refuses_what_it_cannot_build() -> None:
    with pytest.raises(TypeError, match="frozen slots"):
        @quick_init
        @dataclass(slots=True)
        class Mutable:
            a: int

    with pytest.raises(TypeError, match="frozen slots"):
        @quick_init
        @dataclass(frozen=True)
        class NoSlots:
            a: int

    with pytest.raises(TypeError, match="keyword-only"):
        @quick_init
        @dataclass(frozen=True, slots=True, kw_only=True)
        class KeywordOnly:
            a: int
