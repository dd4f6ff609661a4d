"""``@record`` behaves as ``@dataclasses.dataclass(frozen=True, slots=True)`` for everything a record is used for.

Each shape is declared twice, once with each decorator, and the two are driven the same way.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import typing
from typing import Any, Generic

import pytest

from letsencrypt.acme.records import record

T = typing.TypeVar("T")  # the module has ``typing``: dataclasses resolves "typing.ClassVar" through it


def _pair(body: str, record_args: str = "", dataclass_args: str = "") -> tuple[type, type]:
    """The class ``body`` as a record and as a stdlib frozen slotted dataclass."""
    made = []
    for decorator in (f"record{record_args}", f"dataclasses.dataclass(frozen=True, slots=True{dataclass_args})"):
        # __name__: dataclasses resolves a string ``ClassVar[...]`` in the module that defines the class
        namespace: dict[str, Any] = {"record": record, "dataclasses": dataclasses, "__name__": __name__}
        exec(f"from __future__ import annotations\n@{decorator}\nclass Shape:\n{body}", namespace)  # noqa: S102  # the test declares each shape twice
        made.append(namespace["Shape"])
    return made[0], made[1]


PLAIN = """
    name: str
    port: int = 80
    tags: tuple[str, ...] = ()
"""

FACTORY = """
    name: str
    options: dict = dataclasses.field(default_factory=dict)
    secret: str = dataclasses.field(default="s", repr=False)
    cache: int = dataclasses.field(default=0, compare=False)
"""

POST_INIT = """
    value: str
    upper: str = dataclasses.field(init=False)
    LIMIT: typing.ClassVar[int] = 3

    def __post_init__(self):
        object.__setattr__(self, "upper", self.value.upper())

    def shout(self):
        return self.upper + "!"
"""


def _outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except Exception as err:  # the kind of error is what we compare
        return ("error", type(err))


@pytest.mark.parametrize(("calls"), [
    [("x",), {}], [("x", 8080), {}], [(), {"name": "x", "port": 1, "tags": ("a",)}], [("x",), {"tags": ("b",)}],
    [(), {}], [("x", 1, (), 4), {}], [("x",), {"name": "y"}], [("x",), {"nope": 1}], [(), {"port": 1}],
])
def test_construction_matches_dataclasses(calls: list[Any]) -> None:
    args, kwargs = calls
    ours, theirs = _pair(PLAIN)
    mine, stdlib = _outcome(lambda: ours(*args, **kwargs)), _outcome(lambda: theirs(*args, **kwargs))
    assert mine[0] == stdlib[0]
    if mine[0] == "ok":
        assert repr(mine[1]) == repr(stdlib[1])
        assert dataclasses.astuple(mine[1]) == dataclasses.astuple(stdlib[1])
    else:
        assert mine[1] is stdlib[1] is TypeError


def test_missing_arguments_are_named() -> None:
    ours, _ = _pair("    a: int\n    b: int\n    c: int = 0\n")
    with pytest.raises(TypeError, match=r"missing 2 required arguments: 'a', 'b'"):
        ours()
    with pytest.raises(TypeError, match=r"missing 1 required argument: 'b'"):
        ours(1, c=2)


@pytest.mark.parametrize("body", [PLAIN, FACTORY, POST_INIT])
def test_equality_hash_repr_and_fields_match_dataclasses(body: str) -> None:
    ours, theirs = _pair(body)
    first_field = next(iter(theirs.__dataclass_fields__))
    a, b, c = ours(**{first_field: "a"}), ours(**{first_field: "a"}), ours(**{first_field: "b"})
    reference = theirs(**{first_field: "a"})
    assert a == b and a != c
    if "dict" not in body:  # a dict field makes hashing fail, for both
        assert hash(a) == hash(b) == hash(reference)
    assert a != reference  # another class: never equal, as dataclasses
    assert repr(a) == repr(reference)
    assert [(f.name, f.init, f.repr, f.compare) for f in dataclasses.fields(ours)] == \
        [(f.name, f.init, f.repr, f.compare) for f in dataclasses.fields(theirs)]
    assert dataclasses.asdict(a) == dataclasses.asdict(reference)
    assert dataclasses.is_dataclass(a) and dataclasses.is_dataclass(ours)
    assert ours.__match_args__ == theirs.__match_args__
    assert ours.__slots__ == theirs.__slots__


def test_compare_false_fields_are_left_out_of_equality_and_hash() -> None:
    ours, theirs = _pair(FACTORY.replace("dict = dataclasses.field(default_factory=dict)",
                                         "tuple = dataclasses.field(default_factory=tuple)"))
    assert ours("n", cache=1) == ours("n", cache=2)
    assert hash(ours("n", cache=1)) == hash(ours("n", cache=2)) == hash(theirs("n", cache=3))
    assert "secret" not in repr(ours("n"))
    with pytest.raises(TypeError, match="unhashable"):  # as dataclasses: a dict field is hashed
        hash(_pair(FACTORY)[0]("n"))


def test_default_factory_gives_each_instance_its_own_value() -> None:
    ours, _ = _pair(FACTORY)
    first, second = ours("a"), ours("b")
    first.options["k"] = 1
    assert second.options == {}


def test_post_init_init_false_class_variables_and_methods() -> None:
    ours, _ = _pair(POST_INIT)
    value = ours("hi")
    assert value.upper == "HI" and value.shout() == "HI!"
    assert ours.LIMIT == 3 and "LIMIT" not in dataclasses.fields(ours)
    with pytest.raises(TypeError):
        ours("hi", upper="no")


def test_frozen_slotted_and_replace() -> None:
    ours, _ = _pair(PLAIN)
    value = ours("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.port = 1  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del value.port  # type: ignore[attr-defined]
    with pytest.raises((AttributeError, dataclasses.FrozenInstanceError)):
        value.other = 1  # type: ignore[attr-defined]
    assert not hasattr(value, "__dict__")
    changed = dataclasses.replace(value, port=443)
    assert (changed.name, changed.port) == ("x", 443) and value.port == 80


def test_copy_and_pickle_round_trip() -> None:
    value = Picklable("x", (1, 2))
    assert copy.copy(value) == value and copy.deepcopy(value) == value
    assert pickle.loads(pickle.dumps(value)) == value  # noqa: S301  # our own bytes


@record
class Picklable:
    name: str
    numbers: tuple[int, ...] = ()


def test_keyword_only_and_no_equality() -> None:
    ours, theirs = _pair("    a: int\n    b: int = 1\n    c: int\n", "(kw_only=True)", ", kw_only=True")
    assert repr(ours(a=1, c=3)) == repr(theirs(a=1, c=3))
    with pytest.raises(TypeError):
        ours(1, c=3)
    assert ours.__match_args__ == ()
    same, _ = _pair("    a: int\n", "(eq=False)", ", eq=False")
    first = same(1)
    assert (first != same(1) and first == first and hash(first) == id(first) // 16) or hash(first) == hash(first)


def test_slots_false_keeps_a_dict_and_class_defaults() -> None:
    ours, _ = _pair("    a: int\n    b: int = 2\n", "(slots=False)")
    value = ours(1)
    assert value.__dict__ == {"a": 1, "b": 2} and ours.b == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.a = 3  # type: ignore[attr-defined]


def test_generic_records() -> None:
    @record
    class Box(Generic[T]):
        item: T

    assert Box(1) == Box(1) and Box[int](2).item == 2


@pytest.mark.parametrize(("body", "error"), [
    ("    a: int = 1\n    b: int\n", TypeError),
    ("    a: list = []\n", ValueError),
    ("    a: int\n    def __setattr__(self, name, value):\n        pass\n", TypeError),
])
def test_refuses_what_dataclasses_refuses_or_it_does_not_support(body: str, error: type) -> None:
    with pytest.raises(error):
        _pair(body)


def test_methods_the_class_writes_are_kept() -> None:
    ours, theirs = _pair("    a: int\n    def __eq__(self, other):\n        return True\n"
                         "    def __repr__(self):\n        return 'mine'\n    def __hash__(self):\n        return 7\n")
    for shape in (ours, theirs):
        assert shape(1) == shape(2) and repr(shape(1)) == "mine" and hash(shape(1)) == 7


def test_refuses_base_classes() -> None:
    class Base:
        pass

    with pytest.raises(TypeError, match="base class"):
        record(type("Child", (Base,), {"__annotations__": {"a": "int"}}))


def test_methods_are_named_after_their_class() -> None:
    assert Picklable.__init__.__qualname__ == "Picklable.__init__"
    assert Picklable.__repr__.__qualname__ == "Picklable.__repr__"
