"""Headers look-ups: the index, the uncached index and the single-name scan agree."""

from __future__ import annotations

from corsflow.model import Headers


def test_index_keeps_repeated_fields_in_order_whatever_their_case() -> None:
    h = Headers((("Vary", "Origin"), ("X-A", "1"), ("vary", "Accept"), ("VARY", "")))
    assert h.index() == {"vary": ("Origin", "Accept", ""), "x-a": ("1",)}
    assert list(h.index()) == ["vary", "x-a"]
    assert h.get("Vary") == "Origin, Accept, "


def test_index_without_repeats_gives_one_tuple_per_name() -> None:
    h = Headers((("Origin", "https://a.example"), ("Accept", "*/*")))
    assert h.index() == {"origin": ("https://a.example",), "accept": ("*/*",)}


def test_index_is_not_kept_but_by_name_is() -> None:
    h = Headers((("A", "1"),))
    h.index()
    assert h._by_name is None
    assert h.by_name() is h.by_name()
    assert h.index() is h.by_name()


def test_scan_finds_every_value_of_a_name_with_or_without_the_index() -> None:
    pairs = (("ORIGIN", "x"), ("Accept", "*/*"), ("origin", "y"))
    cold = Headers(pairs)
    assert cold.scan("origin") == ("x", "y")
    assert cold.scan("pragma") == ()
    assert cold._by_name is None
    warm = Headers(pairs)
    warm.by_name()
    assert warm.scan("origin") == ("x", "y")
    assert Headers().scan("origin") == ()
