"""Agent-graph speed and storage on the embedded default: wall time per ticker-day cold, model
calls per ticker-day, the same run replayed from the LLM cache, and how the checkpoints grow.

    .venv/bin/python benchmarks/bench_graph.py [--sessions 20] [--tickers 1] [--growth-sessions 500] [--runtimes torch,ct2]

Targets on 2 cores: <= 2 s per ticker-day cold, <= 20 ms replayed, <= 6 model calls per ticker-day;
checkpoint bytes per session constant in run length (last 100 sessions <= 1.2x the first 100 of a
500-session run) and <= 50 KB per session per ticker. The growth run uses scripted answers
(``ScriptedLLM``: the graph, broker, ChromaDB memory and journal are real, the model is not), so
500 sessions take a minute rather than hours; ``--growth-sessions 0`` skips it.
"Cold" means no LLM cache (the model is loaded and converted beforehand and timed separately).
The replayed run makes zero model calls for answers; hidden-state features for the reward adapter
come from the on-disk feature cache written by the cold run.
``--runtimes torch,ct2`` adds a cold run of the same sessions per further runtime of the local
backend (``ct2``: CTranslate2 float32, ``ct2-int8``), each against the torch run of this
benchmark: wall per ticker-day, the ratio, and whether its ledger equals torch's.
``ct2-no-direction-llm`` is CTranslate2 float32 with ``direction.llm_weight: 0`` (the demo
scenario's setting: the direction agent decides without asking the model), against torch's and,
when ``ct2`` ran too, against ct2's with the direction call; its ledger is expected to differ.
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


RUNTIMES = {
    "torch": {"runtime": "torch"},
    "ct2": {"runtime": "ctranslate2"},
    "ct2-int8": {"runtime": "ctranslate2", "compute_type": "int8"},
    "ct2-no-direction-llm": {"runtime": "ctranslate2"},
}
# Scenario settings of a runtime row beyond the backend's own.
EXTRA = {"ct2-no-direction-llm": {"direction": {"llm_weight": 0}}}


def scenario(runs: Path, cache_dir: Path, sessions: int, tickers: int, mode: str, cache_path: Path,
             embedding_cache: bool = True, runtime: str = "torch"):
    names = ["ACME", "BOLT", "CRUX", "DYNO", "ECHO"][:tickers]
    train = max(1, sessions * 2 // 3)
    return parse_scenario(
        {
            "name": "bench",
            "seed": 1,
            "runs_dir": str(runs),
            "cache_dir": str(cache_dir),
            "data": {"kind": "synthetic", "tickers": names, "days": 30 + sessions + 1, "seed": 1, "signal": 0.8},
            "llm": {"backends": {"local": {"kind": "local", "threads": 2, **RUNTIMES[runtime]}},
                    "cache": {"mode": mode, "path": str(cache_path)}},
            "episode": {"warmup_days": 30, "train_days": train, "test_days": sessions - train, "refit_every_days": 10},
            "memory": {"embedding_cache": embedding_cache},
            **EXTRA.get(runtime, {}),
        },
        "bench scenario",
    )


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


def steady_state_per_session(run_dir: Path) -> float:
    """Mean wall seconds per session between the first and the last session's open."""
    return statistics.mean(session_seconds(run_dir))


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
        config = scenario(tmp / "runs", tmp / "cache", sessions, tickers, "off", tmp / "unused.sqlite")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20, help="Decision sessions (training + test).")
    parser.add_argument("--tickers", type=int, default=1, help="Tickers traded (1-5).")
    parser.add_argument("--growth-sessions", type=int, default=500, help="Sessions of the checkpoint-growth run (0 skips it).")
    parser.add_argument("--skip-model", action="store_true", help="Only the growth run (no model load, no cold run).")
    parser.add_argument("--runtimes", default="torch,ct2", help="Runtimes of the local backend to run cold, e.g. torch,ct2 "
                        f"(torch is always the peer); from {sorted(RUNTIMES)}.")
    args = parser.parse_args()
    others = [r for r in args.runtimes.split(",") if r and r != "torch"]
    if set(others) - set(RUNTIMES):
        parser.error(f"--runtimes: unknown {sorted(set(others) - set(RUNTIMES))}; choose from {sorted(RUNTIMES)}")
    growth_rows = growth(args.growth_sessions, args.tickers) if args.growth_sessions else []
    if args.skip_model:
        _print(f"agent graph storage, {args.tickers} ticker(s)", growth_rows)
        return 0

    from agents.llm.local_model import load_local_model

    t0 = time.perf_counter()
    load_local_model(None, threads=2)
    load_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache_path = tmp / "llm.sqlite"
        cold_cfg = scenario(tmp / "cold", tmp / "cache", args.sessions, args.tickers, "record", cache_path)
        t0 = time.perf_counter()
        cold = execute(cold_cfg, resume=False, progress=False)
        cold_s = time.perf_counter() - t0
        replay_cfg = scenario(tmp / "replay", tmp / "cache", args.sessions, args.tickers, "replay", cache_path)
        t0 = time.perf_counter()
        replay = execute(replay_cfg, resume=False, progress=False)
        replay_s = time.perf_counter() - t0
        # The same replay without the embedding cache: every memory text is embedded again (the peer).
        plain_cfg = scenario(tmp / "plain", tmp / "cache", args.sessions, args.tickers, "replay", cache_path, embedding_cache=False)
        plain = execute(plain_cfg, resume=False, progress=False)
        plain_steady = steady_state_per_session(plain.run_dir) / args.tickers
        assert cold.finished and replay.finished and plain.finished
        ticker_days = args.sessions * args.tickers
        _, calls = per_ticker_day(cold.run_dir)
        _, replay_calls = per_ticker_day(replay.run_dir)
        same = (cold.run_dir / "fills.csv").read_text() == (replay.run_dir / "fills.csv").read_text()
        cold_steady = steady_state_per_session(cold.run_dir) / args.tickers
        replay_steady = steady_state_per_session(replay.run_dir) / args.tickers
        # The median drops one-off costs inside a session (the first optimiser use imports torch._dynamo, ~1-2 s).
        replay_median = statistics.median(session_seconds(replay.run_dir)) / args.tickers
        runtime_rows, steady_of = [], {}
        for name in others:
            # Loaded and converted before the clock starts, as torch's model is above.
            from agents.llm.ct2_runtime import load_ct2_model

            load_ct2_model(None, compute_type=RUNTIMES[name].get("compute_type", "float32"), threads=2)
            # Its own feature and embedding caches, cold like torch's were.
            cfg = scenario(tmp / name, tmp / f"cache-{name}", args.sessions, args.tickers, "record", tmp / f"{name}.sqlite",
                           runtime=name)
            other = execute(cfg, resume=False, progress=False)
            assert other.finished
            steady = steady_state_per_session(other.run_dir) / args.tickers
            _, other_calls = per_ticker_day(other.run_dir)
            equal = (other.run_dir / "fills.csv").read_text() == (cold.run_dir / "fills.csv").read_text()
            steady_of[name] = steady
            versus = f"; {steady_of['ct2'] / steady:.2f}x ct2's" if name in EXTRA and "ct2" in steady_of else ""
            runtime_rows += [
                (f"cold, {name}: wall per ticker-day, steady state", f"{steady:.3f} s",
                 f"<= 2 s; {cold_steady / steady:.2f}x torch's{versus}"),
                (f"cold, {name}: model calls per ticker-day (mean)", f"{statistics.mean(other_calls.values()):.2f}", "<= 6"),
                (f"cold, {name}: ledger identical to torch's", str(equal),
                 "other decisions: not expected" if name in EXTRA else "True for float32"),
            ]

    rows = [
        ("model load (converted cache)", f"{load_s:.2f} s", ""),
        ("cold: wall per ticker-day, steady state", f"{cold_steady:.3f} s", "<= 2 s"),
        ("cold: wall per ticker-day, whole run", f"{cold_s / ticker_days:.3f} s", "(incl. startup)"),
        ("cold: model calls per ticker-day (mean)", f"{statistics.mean(calls.values()):.2f}", "<= 6"),
        ("cold: model calls per ticker-day (max)", f"{max(calls.values())}", "<= 6"),
        ("replay: wall per ticker-day, steady state", f"{replay_steady * 1000:.1f} ms", "<= 20 ms"),
        ("replay: wall per ticker-day, median session", f"{replay_median * 1000:.1f} ms", "<= 20 ms"),
        ("replay: wall per ticker-day, whole run", f"{replay_s / ticker_days * 1000:.1f} ms", "(incl. startup)"),
        ("replay, embeddings recomputed: per ticker-day", f"{plain_steady * 1000:.1f} ms",
         f"{plain_steady / max(replay_steady, 1e-9):.1f}x the cached replay"),
        ("replay: model calls (total)", f"{sum(replay_calls.values())}", "0"),
        ("replay: ledger identical to cold run", str(same), "True"),
        ("cold / replay speed ratio", f"{cold_s / max(replay_s, 1e-9):.0f}x", ""),
        *runtime_rows,
    ]
    _print(f"agent graph, {args.sessions} sessions x {args.tickers} ticker(s) (whole run incl. outputs and baselines)", rows + growth_rows)
    return 0


def _print(title: str, rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(title)
    print(f"{'measure':<{width}}  {'value':>12}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>12}  {target}")


if __name__ == "__main__":
    raise SystemExit(main())
