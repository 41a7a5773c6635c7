"""The in-process index scores an item the same wherever its row sits.

A row's place follows insertion order, and that order is not part of a run's meaning: parallel
analyst branches insert in whichever order their threads finish, and a resumed run rebuilds the
index in Chroma's order. Scores that moved with the row flipped near-ties at the top-k cut, so a
replayed run put other memories in a prompt than the recorded run had.
"""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pytest

from env.records import SourceType
from memory import Layer, MemoryConfig, MemoryItem
from memory.index import MemoryIndex
from memory.scoring import epoch_seconds

UTC = dt.timezone.utc
DAY0 = dt.datetime(2024, 1, 2, 21, 0, tzinfo=UTC)


def _items(n: int, rng: np.random.Generator) -> list[tuple[MemoryItem, np.ndarray]]:
    rows = []
    for i in range(n):
        at = DAY0 + dt.timedelta(days=int(rng.integers(0, 20)))
        item = MemoryItem(
            text=f"item {i}", ticker="ACME", source_type=SourceType.NEWS, source_id=f"n{i}", public_at=at,
            layer=Layer.SHALLOW, importance=float(rng.uniform(10, 90)), importance_at=at,
        )
        rows.append((item, rng.standard_normal(384).astype(np.float32)))
    return rows


def _index(rows: list[tuple[MemoryItem, np.ndarray]]) -> MemoryIndex:
    index = MemoryIndex(MemoryConfig())
    for item, vector in rows:
        index.put(item, vector)
    return index


@pytest.mark.parametrize("n", [37, 203, 1001])  # sizes that leave a partial block in gemv's kernel
def test_scores_do_not_depend_on_insertion_order(n):
    rng = np.random.default_rng(n)
    rows = _items(n, rng)
    query = rows[3][1] + 0.5 * rng.standard_normal(384).astype(np.float32)
    query /= np.linalg.norm(query)
    as_of = epoch_seconds(DAY0 + dt.timedelta(days=25))
    forward = _index(rows)
    for trial in range(5):
        shuffled = _index([rows[i] for i in rng.permutation(n)])
        for k in (5, n // 3):
            want = forward.search(query, layer=Layer.SHALLOW, ticker="ACME", as_of_epoch=as_of, k=k)
            got = shuffled.search(query, layer=Layer.SHALLOW, ticker="ACME", as_of_epoch=as_of, k=k)
            assert [(s.item.id, s.score, s.relevance) for s in got] == [(s.item.id, s.score, s.relevance) for s in want], (trial, k)
        ids = [item.id for item, _ in rows[:50]]
        assert shuffled.score_ids(query, ids, as_of) == forward.score_ids(query, ids, as_of)


def test_exact_ties_at_the_cut_are_settled_by_id():
    # Ten copies of one vector (the same text stored under ten source ids) tie exactly; which of them
    # make the top 4 must not depend on which was stored first.
    rng = np.random.default_rng(7)
    vector = rng.standard_normal(384).astype(np.float32)
    rows = [
        (MemoryItem(text="same words", ticker="ACME", source_type=SourceType.NEWS, source_id=f"copy{i}", public_at=DAY0,
                    layer=Layer.SHALLOW, importance=50.0, importance_at=DAY0), vector)
        for i in range(10)
    ]
    query = vector / np.linalg.norm(vector)
    as_of = epoch_seconds(DAY0)
    picks = {
        tuple(s.item.id for s in _index([rows[i] for i in order]).search(query, layer=Layer.SHALLOW, ticker="ACME", as_of_epoch=as_of, k=4))
        for order in (range(10), reversed(range(10)), rng.permutation(10))
    }
    assert picks == {tuple(sorted(item.id for item, _ in rows)[:4])}


def test_store_serves_parallel_branches_one_call_at_a_time(open_store, make_item):
    # Two analyst-like writers and a reader on one store, as the graph's parallel branches are.
    store = open_store()
    errors: list[BaseException] = []

    def write(prefix: str, ticker: str) -> None:
        try:
            for i in range(12):
                store.add([make_item(f"{prefix} headline {i}", ticker=ticker, source_id=f"{prefix}{i}")], as_of=DAY0)
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            errors.append(err)

    def read() -> None:
        try:
            for _ in range(40):
                store.recent(ticker="AAPL", since=DAY0 - dt.timedelta(days=1), as_of=DAY0)
                store.query("headline", ticker="AAPL", as_of=DAY0)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=write, args=("a", "AAPL")), threading.Thread(target=write, args=("m", "MSFT")),
               threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 24
    assert len(store.recent(ticker="AAPL", since=DAY0 - dt.timedelta(days=1), as_of=DAY0)) == 12
