"""Agent-graph speed and storage on the embedded default: wall time per ticker-day cold, model
calls per ticker-day, the same run replayed from the LLM cache, and how the checkpoints grow.

    .venv/bin/python benchmarks/bench_graph.py [--sessions 20] [--tickers 1] [--news-per-day 2.5]
        [--growth-sessions 500] [--peers torch,all-calls]

The runs use ``scenarios/demo.yaml``'s agents (what ``make demo`` runs: CTranslate2 float32 for the
analysts, int8 for the lessons, the direction agent's own vote and the trend call not asked) and its
news density, at bench lengths: 30 warm-up sessions, then ``--sessions`` decisions.

Targets on 2 cores: <= 2 s per ticker-day cold, <= 20 ms replayed, <= 6 model calls per ticker-day;
checkpoint bytes per session constant in run length (last 100 sessions <= 1.2x the first 100 of a
500-session run) and <= 50 KB per session per ticker. The growth run uses scripted answers
(``ScriptedLLM``: the graph, broker, ChromaDB memory and journal are real, the model is not), so
500 sessions take a minute rather than hours; ``--growth-sessions 0`` skips it.

"Cold" means no LLM cache (every model is loaded and converted beforehand and timed separately).
"Steady state" is the mean wall time per session, open to next open, after the first decision
session; the first is printed on its own: it carries a run's one-off work (the news analyst
judging the warm-up's news for its calibrator, the first fits and the optimiser's imports), which
grows with the warm-up, not with the sessions traded. The whole-run figure includes it and the
outputs. The replayed run makes zero model calls; its features come from the cold run's caches.

Peers (``--peers``), each a cold run of the same sessions against the headline: ``torch``, the
first releases' runtime (torch eager float32 for every agent; its ledger should equal the
headline's), and ``all-calls``, the library's default direction weights (the direction agent's own
vote and the market analyst's trend call asked: more calls, other decisions).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.config import parse_scenario  # noqa: E402
from agents.runtime import execute  # noqa: E402
from agents.trace import read_traces  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


DEMO = REPO / "scenarios" / "demo.yaml"
# Cold runs besides the headline (the demo scenario's agents at bench lengths), each its own peer:
PEERS = {
    # the first releases' runtime: torch eager float32 for every agent (lessons too)
    "torch": {"llm.backends.local.runtime": "torch", "llm.agents": {}},
    # the library's default direction weights: the direction agent's own vote and the trend call asked
    "all-calls": {"direction.llm_weight": 1.0, "direction.technical_weight": 0.5},
}


def scenario(runs: Path, cache_dir: Path, sessions: int, tickers: int, mode: str, cache_path: Path,
             embedding_cache: bool = True, peer: str | None = None, news_per_day: float | None = None):
    """The demo scenario's agents (backends, direction, risk, memory, learning) on ``tickers``
    synthetic tickers: 30 warm-up sessions, then ``sessions`` decisions (2/3 training)."""
    import yaml

    from agents.config import apply_overrides

    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    names = ["ACME", "BOLT", "CRUX", "DYNO", "ECHO"][:tickers]
    train = max(1, sessions * 2 // 3)
    overrides = {
        "name": "bench", "seed": 1, "runs_dir": str(runs), "cache_dir": str(cache_dir),
        "data.tickers": names, "data.days": 30 + sessions + 1, "data.seed": 1, "data.signal": 0.8,
        "llm.cache": {"mode": mode, "path": str(cache_path)},
        "episode": {"warmup_days": 30, "train_days": train, "test_days": sessions - train, "refit_every_days": 10},
        "memory.embedding_cache": embedding_cache,
        **({"data.news_per_day": news_per_day} if news_per_day is not None else {}),
        **PEERS.get(peer, {}),
    }
    return parse_scenario(apply_overrides(raw, overrides), "bench scenario")


def per_ticker_day(run_dir: Path) -> tuple[dict[tuple, float], dict[tuple, int]]:
    lat: dict[tuple, float] = defaultdict(float)
    calls: dict[tuple, int] = defaultdict(int)
    for r in read_traces(run_dir):
        key = (r["day"], r["ticker"])
        if r["ticker"]:
            lat[key] += float(r.get("latency_s", 0.0))
            calls[key] += int(r.get("model_calls", 0))
    return lat, calls


def session_seconds(run_dir: Path) -> list[float]:
    """Wall seconds of each session, open to next open (startup and the final outputs excluded)."""
    opens = sorted((r["day"], r["wall_time"]) for r in read_traces(run_dir) if r["node"] == "open_session")
    return [(t1 - t0) / max(1, d1 - d0) for (d0, t0), (d1, t1) in zip(opens, opens[1:])]


def session_stats(run_dir: Path, tickers: int) -> tuple[float, float, float]:
    """(mean, median) wall seconds per ticker-day over the sessions after the first, and the first
    session's seconds. The first decision session carries a run's one-off work (the news analyst
    judging the warm-up's news for the calibrator, the first adapter fit and its optimiser's
    imports), so it is reported on its own."""
    seconds = session_seconds(run_dir)
    later = seconds[1:]
    if not later:
        raise SystemExit(f"{run_dir}: fewer than three decision sessions traced; use --sessions 3 or more")
    return statistics.mean(later) / tickers, statistics.median(later) / tickers, seconds[0]


def checkpoint_bytes_by_session(run_dir: Path) -> dict[int, int]:
    """Stored bytes (checkpoint rows and their writes, each with its ids) by the session they belong to."""
    import sqlite3

    from agents.runtime import checkpointer

    conn = sqlite3.connect(run_dir / "checkpoints.sqlite")
    try:
        writes = dict(conn.execute(
            "SELECT checkpoint_id, SUM(LENGTH(value) + LENGTH(task_id) + LENGTH(channel) + LENGTH(checkpoint_id) + 16) "
            "FROM writes GROUP BY checkpoint_id"
        ).fetchall())
        rows = conn.execute("SELECT checkpoint_id, type, checkpoint, LENGTH(metadata) FROM checkpoints").fetchall()
    finally:
        conn.close()
    out: dict[int, int] = defaultdict(int)
    with checkpointer(run_dir) as saver:
        for cid, typ, blob, meta in rows:
            day = saver.serde.loads_typed((typ, blob))["channel_values"].get("day")
            if day is not None:
                out[int(day)] += len(blob) + meta + len(cid) + int(writes.get(cid) or 0)
    return dict(out)


def growth(sessions: int, tickers: int) -> list[tuple[str, str, str]]:
    """A long run on scripted answers: checkpoint bytes per session, first vs last 100 sessions."""
    from agents.llm.scripted import ScriptedLLM
    from agents.state import AgentName

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = scenario(tmp / "runs", tmp / "cache", sessions, tickers, "off", tmp / "unused.sqlite", news_per_day=1.0)
        config = config.model_copy(update={"learning": config.learning.model_copy(update={"enabled": False})})
        # Answers lean one way per agent, so the run trades and its memory fills and moves.
        llm = ScriptedLLM(lambda agent, messages, options: {o: 1.0 + 0.5 * (k == 0) for k, o in enumerate(options)})
        t0 = time.perf_counter()
        outcome = execute(config, resume=False, progress=False, llms={a: llm for a in AgentName})
        wall = time.perf_counter() - t0
        assert outcome.finished
        by_day = checkpoint_bytes_by_session(outcome.run_dir)
        days = sorted(by_day)
        window = min(100, len(days) // 3)
        first = statistics.mean(by_day[d] for d in days[:window]) / tickers
        last = statistics.mean(by_day[d] for d in days[-window:]) / tickers
        file_bytes = sum(p.stat().st_size for p in outcome.run_dir.glob("checkpoints.sqlite*"))
        run_bytes = sum(p.stat().st_size for p in outcome.run_dir.rglob("*") if p.is_file())
    return [
        (f"growth run: {sessions} sessions, scripted answers", f"{wall:.0f} s", ""),
        (f"checkpoint KB per session per ticker, first {window}", f"{first / 1024:.1f}", "<= 50"),
        (f"checkpoint KB per session per ticker, last {window}", f"{last / 1024:.1f}", "<= 50"),
        ("  last / first", f"{last / first:.2f}x", "<= 1.2x"),
        ("checkpoints.sqlite on disk per session per ticker", f"{file_bytes / sessions / tickers / 1024:.1f} KB", "(SQLite pages and indexes included)"),
        ("whole run folder", f"{run_bytes / 2**20:.1f} MB", ""),
    ]


def cold_rows(label: str, run_dir: Path, tickers: int, headline_steady: float | None = None) -> tuple[list, float]:
    """A cold run's rows and its steady state; a peer's (``headline_steady`` given) is compared with the headline."""
    steady, median, first = session_stats(run_dir, tickers)
    _, calls = per_ticker_day(run_dir)
    target = "<= 2 s" if headline_steady is None else f"{headline_steady / steady:.2f}x the headline's"
    return [
        (f"cold{label}: wall per ticker-day, steady state", f"{steady:.3f} s", target),
        (f"cold{label}: wall per ticker-day, median session", f"{median:.3f} s", ""),
        (f"cold{label}: first session (warm-up news judged, first fits)", f"{first:.1f} s", "once per run"),
        (f"cold{label}: model calls per ticker-day (mean)", f"{statistics.mean(calls.values()):.2f}", "<= 6"),
        (f"cold{label}: model calls per ticker-day (max)", f"{max(calls.values())}", "<= 6"),
    ], steady


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20, help="Decision sessions (training + test).")
    parser.add_argument("--tickers", type=int, default=1, help="Tickers traded (1-5).")
    parser.add_argument("--news-per-day", type=float, default=None, help="Synthetic news items per ticker per calendar day "
                        "(default: the demo scenario's 2.5; the releases before this one benched 1.0).")
    parser.add_argument("--growth-sessions", type=int, default=500, help="Sessions of the checkpoint-growth run (0 skips it).")
    parser.add_argument("--skip-model", action="store_true", help="Only the growth run (no model load, no cold run).")
    parser.add_argument("--peers", default="torch,all-calls", help=f"Further cold runs, each against the headline; from {sorted(PEERS)}.")
    args = parser.parse_args()
    if args.sessions < 3:
        parser.error("--sessions: at least 3 (the steady state is the mean session after the first)")
    peers = [p for p in args.peers.split(",") if p]
    if set(peers) - set(PEERS):
        parser.error(f"--peers: unknown {sorted(set(peers) - set(PEERS))}; choose from {sorted(PEERS)}")
    growth_rows = growth(args.growth_sessions, args.tickers) if args.growth_sessions else []
    if args.skip_model:
        _print(f"agent graph storage, {args.tickers} ticker(s)", growth_rows)
        return 0

    from agents.llm.ct2_runtime import load_ct2_model
    from agents.llm.local_model import load_local_model

    # Every model the runs use is loaded (and converted) before a clock starts.
    t0 = time.perf_counter()
    load_local_model(None, threads=2)
    load_ct2_model(None, compute_type="float32", threads=2)
    load_ct2_model(None, compute_type="int8", threads=2)
    load_s = time.perf_counter() - t0
    n, k = args.sessions, args.tickers

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache_path = tmp / "llm.sqlite"
        cold_cfg = scenario(tmp / "cold", tmp / "cache", n, k, "record", cache_path, news_per_day=args.news_per_day)
        t0 = time.perf_counter()
        cold = execute(cold_cfg, resume=False, progress=False)
        cold_s = time.perf_counter() - t0
        replay_cfg = scenario(tmp / "replay", tmp / "cache", n, k, "replay", cache_path, news_per_day=args.news_per_day)
        t0 = time.perf_counter()
        replay = execute(replay_cfg, resume=False, progress=False)
        replay_s = time.perf_counter() - t0
        # The same replay without the embedding cache: every memory text is embedded again (the peer).
        plain_cfg = scenario(tmp / "plain", tmp / "cache", n, k, "replay", cache_path, embedding_cache=False,
                             news_per_day=args.news_per_day)
        plain = execute(plain_cfg, resume=False, progress=False)
        assert cold.finished and replay.finished and plain.finished
        plain_steady, _, _ = session_stats(plain.run_dir, k)
        _, replay_calls = per_ticker_day(replay.run_dir)
        same = (cold.run_dir / "fills.csv").read_text() == (replay.run_dir / "fills.csv").read_text()
        head_rows, head_steady = cold_rows("", cold.run_dir, k)
        replay_steady, replay_median, replay_first = session_stats(replay.run_dir, k)
        peer_rows = []
        for name in peers:
            # Its own feature and embedding caches, cold like the headline's were.
            cfg = scenario(tmp / name, tmp / f"cache-{name}", n, k, "record", tmp / f"{name}.sqlite", peer=name,
                           news_per_day=args.news_per_day)
            other = execute(cfg, resume=False, progress=False)
            assert other.finished
            rows, _ = cold_rows(f", {name}", other.run_dir, k, headline_steady=head_steady)
            equal = (other.run_dir / "fills.csv").read_text() == (cold.run_dir / "fills.csv").read_text()
            peer_rows += [*rows, (f"cold, {name}: ledger identical to the headline's", str(equal),
                                  "expected" if name == "torch" else "other decisions: not expected")]

    rows = [
        ("models loaded (torch, CTranslate2 float32 and int8)", f"{load_s:.2f} s", "before the clocks"),
        *head_rows,
        ("cold: wall per ticker-day, whole run", f"{cold_s / (n * k):.3f} s", "(incl. startup and outputs)"),
        ("replay: wall per ticker-day, steady state", f"{replay_steady * 1000:.1f} ms", "<= 20 ms"),
        ("replay: wall per ticker-day, median session", f"{replay_median * 1000:.1f} ms", "<= 20 ms"),
        ("replay: first session", f"{replay_first * 1000:.0f} ms", "once per run"),
        ("replay: wall per ticker-day, whole run", f"{replay_s / (n * k) * 1000:.1f} ms", "(incl. startup and outputs)"),
        ("replay, embeddings recomputed: per ticker-day", f"{plain_steady * 1000:.1f} ms",
         f"{plain_steady / max(replay_steady, 1e-9):.1f}x the cached replay"),
        ("replay: model calls (total)", f"{sum(replay_calls.values())}", "0"),
        ("replay: ledger identical to cold run", str(same), "True"),
        ("cold / replay speed ratio", f"{cold_s / max(replay_s, 1e-9):.0f}x", ""),
        *peer_rows,
    ]
    density = args.news_per_day if args.news_per_day is not None else "the demo's"
    _print(f"agent graph: scenarios/demo.yaml's agents, 30 warm-up + {n} sessions x {k} ticker(s), news per day {density} "
           "(whole run incl. outputs and baselines)", rows + growth_rows)
    return 0


def _print(title: str, rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(title)
    print(f"{'measure':<{width}}  {'value':>12}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>12}  {target}")


if __name__ == "__main__":
    raise SystemExit(main())
