"""`iterate` with a meter: what the VM's scans read through (issue 12, finding 1).

It gives what `scan` gives, reads only as far as it is taken, and tells the meter of every
entry it steps over, the ones it skips included, so a call pays for deletions earlier in
its block and for long keys sorted in memory; and the count depends only on the contents.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from rtc.state import StateStore


def seed(store: StateStore, pairs: dict[bytes, bytes], height: int = 1) -> None:
    overlay = store.begin()
    for key, value in pairs.items():
        overlay.set(key, value)
    store.commit(overlay, height)


def test_iterate_gives_what_scan_gives(store: StateStore) -> None:
    seed(store, {b"a%d" % i: b"v%d" % i for i in range(20)})
    overlay = store.begin()
    overlay.delete(b"a3")
    overlay.set(b"a35", b"new")
    overlay.set(b"a4", b"changed")
    for start, end in ((None, None), (b"a1", b"a5"), (b"a35", None), (b"b", None)):
        assert list(overlay.iterate(start, end)) == overlay.scan(start, end)
        assert list(store.iterate(start, end)) == store.scan(start, end)


def test_the_meter_is_told_of_every_entry_stepped_over(store: StateStore) -> None:
    seed(store, {b"k%03d" % i: b"x" for i in range(100)})
    overlay = store.begin()
    for i in range(90):  # an earlier call of the block removed most of them
        overlay.delete(b"k%03d" % i)
    sizes: list[int] = []
    first = next(overlay.iterate(b"k", None, sizes.append))
    assert first == (b"k090", b"x")
    # 91 stored entries read (each 1 + 4 + 1 bytes as stored) and 90 deletions looked at
    assert len(sizes) == 91 + 90 and sum(sizes) == 91 * 6 + 90 * 4


def test_iterate_reads_only_as_far_as_it_is_taken(store: StateStore) -> None:
    seed(store, {b"k%03d" % i: b"x" for i in range(100)})
    sizes: list[int] = []
    assert len(list(islice(store.iterate(None, None, sizes.append), 3))) == 3
    assert len(sizes) == 3


def test_a_run_of_long_keys_is_metered_as_it_is_read(store: StateStore) -> None:
    head = b"h" * 478
    seed(store, {head + b"%03d" % i: b"v" for i in range(50)} | {b"z": b"v"})
    sizes: list[int] = []
    assert next(store.iterate(head, None, sizes.append))[0] == head + b"000"
    assert len(sizes) >= 50  # the whole run is read (and paid for) before its first key


def test_the_count_depends_on_the_contents_only(tmp_path: Path) -> None:
    data = {b"k%03d" % i: b"v" * (i % 5) for i in range(0, 300, 3)}
    one, two = StateStore.open(tmp_path / "one"), StateStore.open(tmp_path / "two")
    seed(one, data)
    seed(two, {**{b"k%03d" % i: b"gone" for i in range(1, 300, 3)}, **dict(reversed(list(data.items())))})
    overlay = two.begin()
    for i in range(1, 300, 3):
        overlay.delete(b"k%03d" % i)
    two.commit(overlay, 2)
    counts = []
    for store in (one, two):
        sizes: list[int] = []
        assert len(list(islice(store.begin().iterate(b"k1", None, sizes.append), 40))) == 40
        counts.append(sizes)
    assert counts[0] == counts[1]


def test_a_meter_that_raises_stops_the_iteration(store: StateStore) -> None:
    seed(store, {b"k%03d" % i: b"x" for i in range(100)})

    def out_of_fuel(size: int) -> None:
        raise RuntimeError("out of fuel")

    with pytest.raises(RuntimeError, match="out of fuel"):
        next(store.begin().iterate(None, None, out_of_fuel))
