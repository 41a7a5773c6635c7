"""Benchmark of reward-driven adaptation on the synthetic market (real local model, CPU).

For each synthetic seed and news ``signal`` (1.0 = informative, 0.0 = pure noise), the
adapter is fitted on the news of the training period, labelled with the FinRS multi-
timescale momentum M_t = (p[t+1]-p[t]) + (p[t+7]-p[t]) + (p[t+30]-p[t]) of its ticker
(only items whose 30-day horizon matured inside the training period), and then scored
on the test period's news:

* acc_truth: direction accuracy against the generator's true item sentiment (non-neutral items);
* acc_move: direction accuracy against the realised sign of the label's own momentum;
* dev: mean |P(up) - base rate| (how confident the predictions are after shrinkage).

Usage: python benchmarks/bench_learning.py [--seeds 0 1] [--days 250] [--block-seeds 0]
"""

from __future__ import annotations

import argparse
import bisect
import tempfile
import time
from pathlib import Path

import numpy as np

from agents.learning.adapter import RewardAdapter, TrainingExample, make_featurizer
from agents.learning.config import LearningConfig
from agents.llm.local_model import load_local_model
from env.config import SyntheticConfig
from env.sources import load_market


def hidden_state_config(**overrides):
    """The hidden-state reader (the first release's defaults), which these checks are about."""
    return LearningConfig(**{"features": "hidden_states", "weight_decay": 300.0, "oof_folds": 4, **overrides})


HORIZONS = (1, 7, 30)


def momentum_examples(
    data, start: int, end: int, horizons: tuple[int, ...] = HORIZONS
) -> list[tuple[str, float, float, int]]:
    """(headline, momentum over ``horizons``, true sentiment, session) for news decided in [start, end)."""
    rows = []
    for item in data.news:
        t = bisect.bisect_left(data.closes_utc, item.public_at)
        if not start <= t < end or t + max(HORIZONS) >= len(data.dates):
            continue
        close = data.array(item.ticker, "close")
        m = sum(float(close[t + h] - close[t]) for h in horizons)
        rows.append((item.headline, m, float(data.truth.item_sentiment.get(item.id, 0.0)), t))
    return rows


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="bench-learning-") as tmp:
        return _run(args, Path(tmp))


def _run(args: argparse.Namespace, work: Path) -> list[dict[str, object]]:
    model = load_local_model()
    results = []
    # (name, blocks fine-tuned, seeds, label horizons): the FinRS 1/7/30 momentum, and a
    # short-horizon label (1 + 3 sessions) that matches how long synthetic news moves prices.
    variants = [
        ("head", 0, args.seeds, HORIZONS),
        ("head_1+3", 0, args.seeds, (1, 3)),
        ("top2", 2, args.block_seeds, HORIZONS),
    ]
    for signal in (1.0, 0.0):
        for seed in sorted(set(args.seeds) | set(args.block_seeds)):
            data = load_market(SyntheticConfig(seed=seed, signal=signal, days=args.days), work / "data")
            split = int(args.days * 0.6)
            for name, blocks, seeds, horizons in variants:
                if seed not in seeds:
                    continue
                # Only rewards that matured by the end of training may be trained on.
                train = momentum_examples(data, 0, split - max(HORIZONS), horizons)
                test = momentum_examples(data, split, args.days, horizons)
                config = hidden_state_config(train_top_blocks=blocks, epochs=1)
                featurizer = make_featurizer(model, config, cache_dir=work / "features")
                adapter = RewardAdapter(config, featurizer)
                texts = [r[0] for r in train]
                started = time.perf_counter()
                featurizer.pooled(texts) if blocks == 0 else featurizer.token_states(
                    texts, featurizer.feature_index - blocks
                )
                feature_s = time.perf_counter() - started
                report = adapter.fit([TrainingExample(text=r[0], outcome=r[1]) for r in train])
                proba = adapter.predict_proba([r[0] for r in test])
                raw = adapter.raw_proba([r[0] for r in test])
                truth = np.array([r[2] for r in test])
                move = np.array([r[1] for r in test])
                informative = truth != 0
                results.append(
                    {
                        "signal": signal, "seed": seed, "mode": name, "n_train": len(train), "n_test": len(test),
                        "feat_s": feature_s, "fit_s": report.train_seconds,
                        "oof_acc": report.oof_accuracy or float("nan"), "z": report.evidence,
                        "shrink": report.shrink,
                        "acc_truth": float(((raw[informative] >= 0.5) == (truth[informative] > 0)).mean()),
                        "acc_move": float(((raw >= 0.5) == (move > 0)).mean()),
                        "dev": float(np.abs(proba - adapter.base_rate).mean()),
                    }
                )
                print(_row(results[-1]), flush=True)
                featurizer.close()
    return results


COLUMNS = ("signal", "seed", "mode", "n_train", "n_test", "feat_s", "fit_s", "oof_acc", "z", "shrink", "acc_truth", "acc_move", "dev")


def _row(r: dict[str, object]) -> str:
    cells = []
    for c in COLUMNS:
        v = r[c]
        cells.append(f"{v:>9.3f}" if isinstance(v, float) else f"{v!s:>9}"[:9] if c != "mode" else f"{v!s:>9}")
    return " ".join(cells)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="Synthetic seeds for the head-only adapter.")
    parser.add_argument("--block-seeds", type=int, nargs="*", default=[0], help="Seeds also run with the top 2 blocks fine-tuned (slow).")
    parser.add_argument("--days", type=int, default=250, help="Sessions per synthetic market (first 60%% train).")
    args = parser.parse_args(argv)
    print("acc_* use the raw (unshrunk) direction; dev is the mean |P(up) - base rate| after shrinkage")
    print(" ".join(f"{c:>9}" for c in COLUMNS))
    results = run(args)
    print("\nsummary (mean over seeds)")
    print(" ".join(f"{c:>9}" for c in COLUMNS))
    for signal in (1.0, 0.0):
        for mode in ("head", "head_1+3", "top2"):
            rows = [r for r in results if r["signal"] == signal and r["mode"] == mode]
            if rows:
                mean = {c: float(np.mean([r[c] for r in rows])) for c in COLUMNS if c not in ("signal", "seed", "mode")}
                print(_row({"signal": signal, "seed": "mean", "mode": mode, **mean}))


if __name__ == "__main__":
    main()
