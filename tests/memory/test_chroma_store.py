"""ChromaMemoryStore on a real PersistentClient in a tmp dir, with the real embedding model."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from env.errors import LookaheadError, MemoryStoreError
from env.records import SourceType
from memory import MARKET_TICKER, Layer, MemoryConfig, MoveCause
from memory.chroma_store import MOVES_LOG

DAY0 = dt.datetime(2024, 1, 2, 21, 0, tzinfo=dt.timezone.utc)  # same session close as conftest's items
DAY = dt.timedelta(days=1)


def _moves_log(run_dir: Path) -> list[dict]:
    path = run_dir / "memory" / MOVES_LOG
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_add_routes_by_source_type_and_is_idempotent(open_store, make_item):
    store = open_store()
    news = make_item("Apple beats quarterly estimates")
    filing = make_item("10-K: supply chain concentrated in China", source=SourceType.FILING_10K)
    macro = make_item("CPI surprise to the upside", ticker=MARKET_TICKER, source=SourceType.MACRO)
    ids = store.add([news, filing, macro, news], DAY0)
    assert ids == [news.id, filing.id, macro.id, news.id]
    assert [store.count(layer) for layer in Layer] == [1, 1, 1, 0]
    stored = {item.id: item for item in store.get(ids)}
    assert stored[filing.id].layer is Layer.DEEP and stored[filing.id].importance == 85.0
    assert stored[news.id].created_at == DAY0 and stored[news.id].revision == 1

    store.feedback([news.id], 0.01, DAY0)
    before = store.get([news.id])[0]
    assert store.add([news], DAY0 + DAY) == [news.id]  # re-adding must not reset feedback
    assert store.get([news.id])[0] == before
    assert store.count() == 3


def test_scores_match_hand_computed_values(open_store, make_item, embedder):
    store = open_store()
    item = make_item("Nvidia raises data-center guidance", importance=80.0)
    store.add([item], DAY0)
    vector = embedder([item.text])[0]
    (hit,) = store.query("", ticker="AAPL", as_of=DAY0 + 2 * DAY, query_embedding=vector)
    assert hit.recency == pytest.approx(math.exp(-2 / 3))
    assert hit.importance == pytest.approx(80 * 0.92**2 / 100)
    assert hit.relevance == pytest.approx(1.0, abs=1e-5)
    assert hit.score == pytest.approx(math.exp(-2 / 3) + 0.67712 + 1.0, abs=1e-5)


def test_relevance_ranks_semantically_closer_text_first(open_store, make_item):
    store = open_store()
    store.add([make_item("iPhone sales surge in China"), make_item("Board approves new dividend policy")], DAY0)
    hits = store.query("smartphone demand", ticker="AAPL", as_of=DAY0)
    assert hits[0].item.text == "iPhone sales surge in China"
    assert hits[0].relevance > hits[1].relevance


@pytest.mark.parametrize("retrieval", ["exact", "chroma"])
def test_query_returns_only_items_public_at_as_of(open_store, make_item, retrieval):
    store = open_store(MemoryConfig(retrieval=retrieval))
    items = [make_item(f"Apple news item number {i}", days=i) for i in range(6)]
    store.add(items, DAY0 + 6 * DAY)
    for cutoff in range(6):
        as_of = DAY0 + cutoff * DAY + dt.timedelta(hours=1)
        hits = store.query("Apple news", ticker="AAPL", as_of=as_of, k_per_layer=10)
        assert {h.item.id for h in hits} == {i.id for i in items[: cutoff + 1]}
        assert all(h.item.public_at <= as_of for h in hits)


def test_add_refuses_items_not_yet_public(open_store, make_item):
    store = open_store()
    with pytest.raises(LookaheadError, match=r"items\[0\].*public_at"):
        store.add([make_item("tomorrow's news", days=1)], DAY0)
    assert store.count() == 0


@pytest.mark.parametrize("retrieval", ["exact", "chroma"])
def test_ticker_filter_keeps_market_wide_items(open_store, make_item, retrieval):
    store = open_store(MemoryConfig(retrieval=retrieval))
    aapl, msft = make_item("Apple earnings call"), make_item("Microsoft earnings call", ticker="MSFT")
    macro = make_item("Fed raises rates", ticker=MARKET_TICKER, source=SourceType.MACRO)
    store.add([aapl, msft, macro], DAY0)
    assert {h.item.id for h in store.query("earnings", ticker="AAPL", as_of=DAY0)} == {aapl.id, macro.id}
    assert len(store.query("earnings", ticker=None, as_of=DAY0)) == 3


def test_chroma_mode_agrees_with_exact_mode_when_the_pool_holds_everything(tmp_path, open_store, make_item):
    items = [make_item(f"headline {i} about Apple products and services", days=-i, importance=10.0 * i) for i in range(8)]
    exact = open_store(MemoryConfig(), run_dir=tmp_path / "a")
    chroma = open_store(MemoryConfig(retrieval="chroma", chroma_candidates=20), run_dir=tmp_path / "b")
    for store in (exact, chroma):
        store.add(items, DAY0)
    got = [store.query("Apple services", ticker="AAPL", as_of=DAY0 + DAY, k_per_layer=3) for store in (exact, chroma)]
    assert [h.item.id for h in got[0]] == [h.item.id for h in got[1]]
    assert [h.score for h in got[0]] == pytest.approx([h.score for h in got[1]], abs=1e-5)


def test_top_k_per_layer_then_merged(open_store, make_item):
    store = open_store()
    store.add([make_item(f"news {i}") for i in range(5)], DAY0)
    store.add([make_item(f"annual report {i}", source=SourceType.FILING_10K) for i in range(5)], DAY0)
    hits = store.query("report", ticker="AAPL", as_of=DAY0, k_per_layer={Layer.SHALLOW: 2, Layer.DEEP: 1})
    assert sorted(h.item.layer for h in hits) == [Layer.DEEP, Layer.SHALLOW, Layer.SHALLOW]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(store.query("report", ticker="AAPL", as_of=DAY0, layers=[Layer.DEEP], k_per_layer=4)) == 4


def test_feedback_promotes_and_demotes_with_logged_causes(tmp_path, open_store, make_item):
    store = open_store()
    news = make_item("Apple unveils new chip", importance=50.0)
    store.add([news], DAY0)
    moves = store.feedback([news.id, news.id], 0.03, DAY0)  # +15 points (duplicates count once)
    assert [(m.from_layer, m.to_layer, m.cause) for m in moves] == [(Layer.SHALLOW, Layer.INTERMEDIATE, MoveCause.PROMOTION)]
    assert moves[0].importance_before == pytest.approx(50.0) and moves[0].importance_after == pytest.approx(65.0)
    (item,) = store.get([news.id])
    assert item.layer is Layer.INTERMEDIATE and item.access_count == 1 and item.revision == 2
    assert store.count(Layer.SHALLOW) == 0

    moves = store.feedback([news.id], -0.05, DAY0 + DAY)  # 65*0.967 = 62.86 -> -20 (max step) = 42.86
    assert [(m.to_layer, m.cause) for m in moves] == [(Layer.SHALLOW, MoveCause.DEMOTION)]
    assert moves[0].importance_after == pytest.approx(65 * 0.967 - 20)
    logged = _moves_log(tmp_path / "run")
    assert [(m["cause"], m["to_layer"]) for m in logged] == [("promotion", "intermediate"), ("demotion", "shallow")]
    assert "feedback reward" in logged[0]["detail"]


def test_feedback_ignores_unknown_ids_and_rejects_bad_reward(open_store):
    store = open_store()
    assert store.feedback(["no-such-id"], 0.5, DAY0) == []
    with pytest.raises(MemoryStoreError, match="reward"):
        store.feedback([], "high", DAY0)
    with pytest.raises(MemoryStoreError, match="reward"):
        store.feedback([], float("nan"), DAY0)


def test_step_day_demotes_by_decay_deletes_expired_and_converges(tmp_path, open_store, make_item):
    store = open_store()
    deep = make_item("10-K: new segment reporting", source=SourceType.FILING_10K, importance=75.0)
    shallow = make_item("Minor analyst note", importance=20.0)
    lesson = make_item("Lesson: guidance cuts matter more than beats", source=SourceType.REFLECTION, importance=1.0)
    store.add([deep, shallow, lesson], DAY0)
    assert store.step_day(DAY0) == []
    # Deep decays 0.988/day: 75 * 0.988^6 = 69.76 < 70 on day 6. Shallow: recency exp(-9/3)=0.0498 < 0.05 and
    # 20 * 0.92^9 = 9.4 > 5: not yet; by day 18 importance is 4.45 < 5 -> deleted.
    assert store.step_day(DAY0 + 5 * DAY) == []
    moves = store.step_day(DAY0 + 6 * DAY)
    assert [(m.item_id, m.to_layer, m.cause) for m in moves] == [(deep.id, Layer.INTERMEDIATE, MoveCause.DEMOTION)]
    assert moves[0].importance_before == pytest.approx(75 * 0.988**6)
    assert store.step_day(DAY0 + 6 * DAY) == []  # re-running the same day changes nothing
    moves = store.step_day(DAY0 + 18 * DAY)
    assert (shallow.id, None, MoveCause.EXPIRY) in [(m.item_id, m.to_layer, m.cause) for m in moves]
    assert store.get([shallow.id]) == []
    assert store.get([lesson.id])[0].layer is Layer.REFLECTION  # reflection never moves nor expires
    assert store.step_day(DAY0 + 3000 * DAY) and store.get([lesson.id])
    causes = [m["cause"] for m in _moves_log(tmp_path / "run")]
    assert causes[:1] == ["demotion"] and "expiry" in causes


def test_close_and_reopen_gives_identical_state_and_results(open_store, make_item):
    store = open_store()
    items = [make_item(f"Apple story {i}: {topic}", days=-i) for i, topic in enumerate(["chips", "china", "services", "car"])]
    items.append(make_item("10-Q shows margin expansion", source=SourceType.FILING_10Q, event_date=dt.date(2023, 12, 31),
                           relevance_prob=0.8, impact_label="positive", impact_score=0.4, reason="margins drive EPS",
                           url="https://example.test/10q"))
    store.add(items, DAY0)
    store.feedback([items[0].id, items[4].id], 0.04, DAY0 + DAY)
    store.step_day(DAY0 + DAY)
    ids = [i.id for i in items]
    state = store.get(ids)
    results = store.query("Apple margins", ticker="AAPL", as_of=DAY0 + 2 * DAY)
    counts = [store.count(layer) for layer in Layer]
    store.close()
    with pytest.raises(MemoryStoreError, match="closed"):
        store.query("x", ticker=None, as_of=DAY0)

    reopened = open_store()
    assert reopened.get(ids) == state
    assert [reopened.count(layer) for layer in Layer] == counts
    again = reopened.query("Apple margins", ticker="AAPL", as_of=DAY0 + 2 * DAY)
    assert [h.item for h in again] == [h.item for h in results]
    assert [h.score for h in again] == pytest.approx([h.score for h in results], abs=1e-6)


def test_second_writer_is_refused_and_read_only_is_allowed(open_store, make_item):
    writer = open_store()
    writer.add([make_item("Apple news")], DAY0)
    with pytest.raises(MemoryStoreError, match="already open for writing"):
        open_store()
    reader = open_store(read_only=True)
    assert reader.count() == 1 and reader.read_only
    with pytest.raises(MemoryStoreError, match="read-only"):
        reader.add([make_item("other")], DAY0)
    writer.close()
    open_store().close()  # the lock is released on close


def test_long_text_is_truncated_with_a_note(open_store, make_item):
    store = open_store(MemoryConfig(max_text_chars=100))
    item = make_item("x" * 250)
    store.add([item], DAY0)
    (stored,) = store.get([item.id])
    assert len(stored.text) == 100 and stored.id == item.id
    assert stored.notes == ("text: truncated from 250 to 100 characters",)


def test_bad_input_gives_clear_errors(tmp_path, open_store, make_item):
    store = open_store()
    with pytest.raises(MemoryStoreError, match=r"items\[1\]: expected a MemoryItem"):
        store.add([make_item("ok"), {"text": "dict"}], DAY0)
    with pytest.raises(MemoryStoreError, match="as_of: must be timezone-aware"):
        store.add([make_item("ok")], dt.datetime(2024, 1, 2))
    with pytest.raises(MemoryStoreError, match="query text"):
        store.query("  ", ticker=None, as_of=DAY0)
    routing = {SourceType.NEWS: Layer.SHALLOW}
    with pytest.raises(MemoryStoreError, match="'10-K' has no layer in memory.routing"):
        open_store(MemoryConfig(routing=routing), run_dir=tmp_path / "other").add(
            [make_item("k", source=SourceType.FILING_10K)], DAY0
        )


CRASH_SCRIPT = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    from pathlib import Path
    from memory import MemoryConfig, open_memory

    def no_embedding(texts):
        raise AssertionError("step_day must not embed")

    store = open_memory(MemoryConfig(), Path(sys.argv[1]), embedding_function=no_embedding)
    # Fault injection: die by SIGKILL after the move's upsert into the new layer, before the delete.
    store._delete_from = lambda layer, ids: os.kill(os.getpid(), signal.SIGKILL)
    store.step_day(dt.datetime.fromisoformat(sys.argv[2]))
    """
)


@pytest.mark.slow
def test_sigkill_between_move_writes_is_repaired_on_reopen(tmp_path, open_store, make_item):
    run_dir = tmp_path / "run"
    store = open_store()
    mover = make_item("Apple to buy a chip designer", importance=70.0)  # shallow, >= 60: promoted on step_day
    stays = make_item("Apple store opens in Mumbai", importance=30.0)
    store.add([mover, stays], DAY0)
    store.close()

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(run_dir), DAY0.isoformat()], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    reopened = open_store()  # the dead process's lock was released by the OS
    assert reopened.count() == 2
    assert reopened.count(Layer.INTERMEDIATE) == 1 and reopened.count(Layer.SHALLOW) == 1
    assert reopened.get([mover.id])[0].layer is Layer.INTERMEDIATE
    hits = reopened.query("Apple acquisition", ticker="AAPL", as_of=DAY0)
    assert sorted(h.item.id for h in hits) == sorted([mover.id, stays.id])
    assert reopened.step_day(DAY0) == []  # converged: nothing left to move
    logged = _moves_log(run_dir)
    assert [(m["item_id"], m["cause"], m["from_layer"]) for m in logged] == [(mover.id, "repair", "shallow")]
    reopened.close()
    assert open_store().count() == 2  # the stale copy is gone from disk, not only hidden


def test_feedback_many_equals_feedback_one_call_at_a_time(tmp_path, open_store, make_item):
    """A session's reward parts are written in one batch; the result must equal applying them in turn."""
    stores = [open_store(run_dir=tmp_path / name) for name in ("one", "many")]
    items = [make_item(f"Apple item {k}", importance=50.0) for k in range(4)]
    batch = [([items[0].id, items[1].id], 0.03), ([items[1].id, items[2].id], -0.05), ([items[0].id, "gone"], 0.04)]
    for store in stores:
        store.add(items, DAY0)
    moves_one = [m for ids, r in batch for m in stores[0].feedback(ids, r, DAY0 + DAY)]
    moves_many = stores[1].feedback_many(batch, DAY0 + DAY)
    assert moves_many and [(m.item_id, m.to_layer) for m in moves_one] == [(m.item_id, m.to_layer) for m in moves_many]
    got = [{i.id: (i.layer, round(i.importance, 12), i.access_count) for i in s.get([x.id for x in items])} for s in stores]
    assert got[0] == got[1]
    assert got[1][items[0].id][2] == 2 and got[1][items[3].id][2] == 0
    assert [s.count(Layer.INTERMEDIATE) for s in stores] == [stores[0].count(Layer.INTERMEDIATE)] * 2


def test_recent_returns_a_tickers_items_in_the_window_and_nothing_unpublished(open_store, make_item):
    """The news signal's window (``MemoryStore.recent``): this ticker, ``since < public_at <= as_of``,
    the wanted source types only, oldest first; the same from the no-memory store for its session."""
    from memory.session_store import SessionMemoryStore
    DAY0 = dt.datetime(2024, 1, 2, 21, 0, tzinfo=dt.timezone.utc)  # make_item's day 0

    old = make_item("Acme wins a large defence contract", days=0)
    mid = make_item("Acme recalls brake assemblies", days=2)
    new = make_item("Acme raises its dividend", days=3)
    other = make_item("Bolt cuts guidance", ticker="BOLT", days=3)
    filing = make_item("Acme 10-Q: revenue up 4 %", source=SourceType.FILING_10Q, days=3)
    later = make_item("Acme chief executive resigns", days=6)
    store = open_store()
    for item in (old, mid, new, other, filing):
        store.add([item], as_of=item.public_at)
    as_of = DAY0 + dt.timedelta(days=3)
    got = store.recent(ticker="AAPL", since=DAY0 + dt.timedelta(days=1), as_of=as_of, source_types=[SourceType.NEWS])
    assert [i.text for i in got] == [mid.text, new.text]
    everything = store.recent(ticker="AAPL", since=DAY0 - dt.timedelta(days=1), as_of=as_of)
    assert {i.text for i in everything} == {old.text, mid.text, new.text, filing.text}
    store.add([later], as_of=later.public_at)
    assert later.text not in {i.text for i in store.recent(ticker="AAPL", since=DAY0, as_of=as_of)}
    session = SessionMemoryStore(MemoryConfig())
    session.add([mid, new], as_of=as_of)
    session.step_day(as_of)  # a new session: without memory nothing older is known
    session.add([new], as_of=as_of)
    assert [i.text for i in session.recent(ticker="AAPL", since=DAY0, as_of=as_of)] == [new.text]


# -- group commit (memory.write_behind) --------------------------------------------------------

def _chroma_rows(run_dir: Path) -> dict[tuple[str, str], tuple]:
    """Every row ChromaDB holds on disk under run_dir, read by a fresh client: (layer, id) -> row."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(run_dir / "memory"), settings=Settings(anonymized_telemetry=False))
    rows = {}
    for layer in Layer:
        got = client.get_collection(f"tradegraph-memory-{layer.value}").get(include=["embeddings", "metadatas", "documents"])
        for item_id, doc, meta, vec in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True):
            rows[(layer.value, item_id)] = (doc, tuple(sorted(meta.items())), tuple(float(x) for x in vec))
    return rows


def _session_of_writes(store, make_item):
    """Adds, feedback that promotes and demotes, and a step_day that moves and expires: every write kind."""
    items = [make_item(f"Apple story {k}", importance=float(imp), days=-k) for k, imp in enumerate([55, 58, 20, 12, 40])]
    store.add(items, DAY0)
    store.feedback([items[0].id, items[1].id], 0.03, DAY0 + DAY)  # promoted to intermediate
    store.feedback([items[1].id], -0.05, DAY0 + 2 * DAY)  # back to shallow
    moves = store.step_day(DAY0 + 60 * DAY)  # decayed: expiries
    assert any(m.cause is MoveCause.EXPIRY for m in moves)
    later = [make_item(f"Apple later story {k}", days=60) for k in range(2)]
    store.add(later, DAY0 + 60 * DAY)
    return items + later


def test_group_commit_leaves_chroma_exactly_as_writing_through_does(tmp_path, open_store, make_item):
    """The same calls with write_behind 512 (coalesced, applied on close) and 0 (every call written
    through) leave the same rows on disk: ids, layers, documents, metadata and vectors bit for bit."""
    states = {}
    for name, behind in (("through", 0), ("behind", 512)):
        store = open_store(MemoryConfig(write_behind=behind), run_dir=tmp_path / name)
        _session_of_writes(store, make_item)
        pending = tmp_path / name / "memory" / "pending_writes.jsonl"
        if behind:
            assert pending.stat().st_size > 0 and not _chroma_rows(tmp_path / name), "nothing reaches Chroma before the flush"
        states[name] = [store.get([k]) for k in sorted(store._index.items)]
        store.close()
        assert not pending.exists() or pending.stat().st_size == 0
    assert states["through"] == states["behind"]
    assert _chroma_rows(tmp_path / "behind") == _chroma_rows(tmp_path / "through")
    assert len(_chroma_rows(tmp_path / "through")) >= 3


def test_group_commit_flushes_when_the_threshold_is_reached(tmp_path, open_store, make_item):
    store = open_store(MemoryConfig(write_behind=3))
    store.add([make_item("Apple one"), make_item("Apple two")], DAY0)
    assert not _chroma_rows(tmp_path / "run")
    store.add([make_item("Apple three")], DAY0)  # 3 pending writes: applied now
    assert len(_chroma_rows(tmp_path / "run")) == 3
    assert (tmp_path / "run" / "memory" / "pending_writes.jsonl").stat().st_size == 0


def test_a_reader_sees_pending_writes_and_chroma_retrieval_flushes_first(tmp_path, open_store, make_item):
    writer = open_store()
    item = make_item("Apple buys a chip designer")
    writer.add([item], DAY0)
    reader = open_store(read_only=True)
    assert reader.get([item.id]) == writer.get([item.id]) and not _chroma_rows(tmp_path / "run")
    chroma = open_store(MemoryConfig(retrieval="chroma"), run_dir=tmp_path / "other")
    chroma.add([item], DAY0)
    hits = chroma.query("Apple acquisition", ticker="AAPL", as_of=DAY0)
    assert [h.item.id for h in hits] == [item.id]  # Chroma answered, so the write reached it first
    assert len(_chroma_rows(tmp_path / "other")) == 1


KILL_SCRIPT = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    from pathlib import Path
    from memory import MemoryConfig, open_memory
    from memory.base import MemoryItem
    from env.records import SourceType

    def embed(texts):
        return [[float(len(t) % 7 + 1), float(i + 1), 0.5] for i, t in enumerate(texts)]

    day = dt.datetime.fromisoformat(sys.argv[2])
    store = open_memory(MemoryConfig(), Path(sys.argv[1]), embedding_function=embed)
    items = [MemoryItem(text=f"Apple item {k}", ticker="AAPL", source_type=SourceType.NEWS, source_id=f"s{k}",
                        public_at=day, importance=50.0) for k in range(3)]
    store.add(items, day)
    store.feedback([items[0].id], 0.03, day)
    print(",".join(i.id for i in items), flush=True)
    if sys.argv[3] == "torn":  # a write that dies half-way: its call never returned
        os.write(store._pending_fd, b'{"op":"upsert","layer":"shallow","ids":["x"')
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["clean", "torn"])
def test_pending_writes_survive_sigkill_and_are_applied_on_reopen(tmp_path, ending):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(run_dir), DAY0.isoformat(), ending], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    ids = proc.stdout.strip().split(",")
    assert not _chroma_rows(run_dir)  # killed before any flush: only the pending log has the writes

    from memory import open_memory

    def embed(texts):
        raise AssertionError("reopening must not embed")

    reader = open_memory(MemoryConfig(), run_dir, embedding_function=embed, read_only=True)
    assert [i.id for i in reader.get(ids)] == ids and reader.get([ids[0]])[0].access_count == 1
    reader.close()
    store = open_memory(MemoryConfig(), run_dir, embedding_function=embed)  # applies the log, torn line dropped
    assert [i.id for i in store.get(ids)] == ids and "x" not in store._index
    assert store.get([ids[0]])[0].access_count == 1
    rows = _chroma_rows(run_dir)
    assert sorted(k for _, k in rows) == sorted(ids)
    store.close()


def test_a_damaged_pending_log_is_a_clear_error(tmp_path, open_store, make_item):
    store = open_store()
    store.add([make_item("Apple news")], DAY0)
    store.close()
    log = tmp_path / "run" / "memory" / "pending_writes.jsonl"
    log.write_text('not json\n{"op":"delete","layer":"shallow","ids":[]}\n')
    with pytest.raises(MemoryStoreError, match="line 1 is not a write record"):
        open_store()
    log.write_text('{"op":"drop","layer":"shallow","ids":[]}\n')
    with pytest.raises(MemoryStoreError, match="unknown write"):
        open_store()
