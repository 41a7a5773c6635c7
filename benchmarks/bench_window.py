"""The news window model, measured apart from the rest of the agent (issue 11: reading, at the level
of a whole window of news, against the truth it never sees).

For each seed and news signal, the demo's synthetic market is built, the warm-up news (150
sessions) is turned into matured examples exactly as at the agent's first decision, and the
reader, the calibrator-free handle and the news window model are fitted through the reflect node's
own row builder (``agents.nodes.reflect.window_rows``). Then, on the next 85 sessions it never saw:

- ``gate``: whether the window model's out-of-fold t-statistic opened it (and which window it chose);
- ``oof corr``: its out-of-fold corr(prediction, next position's return) on the warm-up rows;
- ``oracle corr``: the same correlation for the true news drift (the news_oracle's signal) over the
  same rows, the ceiling a perfect reader could reach;
- ``corr with drift, later``: corr(window model's log-odds, true news drift) over the later sessions.

    .venv/bin/python benchmarks/bench_window.py [--seeds 5] [--first-seed 100] [--out benchmarks/results/bench_window.json]
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WARMUP, LATER = 150, 235


def measure(seed: int, signal: float, featurizer, cache: Path) -> dict:
    from agents.adaptation import AdapterHandle
    from agents.analysts import news_text
    from agents.learning.config import LearningConfig
    from agents.nodes.reflect import window_rows
    from env.config import SyntheticConfig
    from env.news_baselines import make_news_strategy
    from env.sources import load_market

    data = load_market(SyntheticConfig(tickers=["ACME"], start="2023-01-02", days=240, seed=seed, signal=signal, news_per_day=2.5), cache)
    view = data.view(len(data.dates) - 1)
    closes, opens = view.series("ACME", "close"), view.series("ACME", "open")
    items = []
    for n in view.news("ACME"):
        s = bisect.bisect_left(data.closes_utc, n.public_at)
        items.append((s, news_text(n, 220), n.id))
    examples = [{"text": t, "index": s, "item_id": k, "outcome": float(((closes[s + 1] - closes[s]) + (closes[s + 3] - closes[s])) / closes[s])}
                for s, t, k in items if s + 3 <= WARMUP]
    config = LearningConfig()
    deps = SimpleNamespace(config=SimpleNamespace(learning=config), data=data)
    handle = AdapterHandle(config, Path(tempfile.mkdtemp()), lambda: featurizer)
    reader, _, window = handle.fit(examples, version=WARMUP, window=lambda: window_rows(deps, SimpleNamespace(day=WARMUP), examples))
    oracle = make_news_strategy("news_oracle", data, horizon_days=3)
    first = min(e["index"] for e in examples)
    rows = range(first, WARMUP - 1)
    ret = np.array([opens[t + 2] / opens[t + 1] - 1 for t in rows])
    cap = 3 * float(np.median(np.abs(ret[ret != 0])))
    drift_warm = np.array([oracle.drift(data.view(t), "ACME") for t in rows])
    later_signal, later_drift = [], []
    for day in range(WARMUP, LATER):
        inside = [(s, t) for s, t, _ in items if 0 <= day - s < config.window_sessions]
        later_signal.append(handle.window_deviation([day - s for s, _ in inside], [t for _, t in inside]) or 0.0)
        later_drift.append(oracle.drift(data.view(day), "ACME"))
    later_corr = float(np.corrcoef(later_signal, later_drift)[0, 1]) if np.std(later_signal) > 0 else None
    return {
        "seed": seed, "signal": signal, "reader_gate": reader.shrink > 0, "reader_reason": reader.reason,
        "gate": window["shrink"] > 0, "window": window["window"], "oof_corr": window.get("oof_corr"),
        "t": window.get("evidence"), "t_by_window": window.get("t_by_window"), "reason": window["reason"],
        "oracle_corr": float(np.corrcoef(drift_warm, np.clip(ret, -cap, cap))[0, 1]) if signal else None,
        "later_corr_with_drift": later_corr,
    }


def table(rows: list[dict]) -> str:
    out = ["| news signal | seed | window model gate (window) | out-of-fold t | out-of-fold corr | oracle corr, same rows | corr with true drift, next 85 sessions |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        fmt = lambda v: "—" if v is None else f"{v:+.2f}"  # noqa: E731
        out.append(f"| {r['signal']:g} | {r['seed']} | {'open' if r['gate'] else 'shut'} ({r['window']}) | {fmt(r['t'])} | "
                   f"{fmt(r['oof_corr'])} | {fmt(r['oracle_corr'])} | {fmt(r['later_corr_with_drift'])} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--signals", default="0.8,0")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from agents.learning.features import EmbeddingFeaturizer
    from memory import MemoryConfig, make_embedding_function
    from memory.factory import embedding_model_id

    repo = Path(__file__).resolve().parents[1]
    memory = MemoryConfig()
    featurizer = EmbeddingFeaturizer(make_embedding_function(memory, repo / ".cache" / "tradegraph" / "embeddings.sqlite"),
                                     embedding_model_id(memory))
    cache = Path(tempfile.mkdtemp())
    rows = []
    for signal in (float(s) for s in args.signals.split(",") if s.strip()):
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            rows.append(measure(seed, signal, featurizer, cache))
            print(rows[-1]["signal"], rows[-1]["seed"], rows[-1]["reason"], flush=True)
    print()
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
