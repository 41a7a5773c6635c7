"""Which reader should the reward adapter use? Each candidate is fitted the way the agent fits it at
its first decision (on the warm-up news whose 1+3-session labels have matured, point in time) and
scored on the news after the training period against the generator's *true* tone, which it never saw.

    .venv/bin/python benchmarks/bench_reader.py [--seeds 6] [--first-seed 100] [--hidden-states]
        [--out benchmarks/results/bench_reader.json]

Readers (rows):
- ``embeddings``: the adapter on all-MiniLM-L6-v2 sentence vectors (the default; the memory
  computes these vectors anyway), with its out-of-fold evidence gate;
- ``embeddings, 4 folds`` / ``embeddings, decay 300``: the same with the previous defaults;
- ``hidden states`` (``--hidden-states``): the adapter on SmolLM2 layer -4 (the first release's reader);
- ``tfidf``: the peer, ``news_tfidf``'s TF-IDF + logistic regression (no gate: it always trades).

Per signal group (0.8 informative, 0 noise): the share of seeds whose gate opened, and on seeds
where it opened the correlation of P(up) with the true tone and the accuracy of its side (P(up)
against the reader's own base rate) on non-neutral items. On noise a gate that opens is a false
positive; a perfect reader would stay shut there.
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.analysts import news_text  # noqa: E402
from agents.learning.adapter import RewardAdapter, TrainingExample, make_featurizer  # noqa: E402
from agents.learning.config import LearningConfig  # noqa: E402
from agents.learning.features import EmbeddingFeaturizer  # noqa: E402
from env.config import SyntheticConfig  # noqa: E402
from env.sources import load_market  # noqa: E402
from memory import MemoryConfig, make_embedding_function  # noqa: E402
from memory.factory import embedding_model_id  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WARMUP, TRAIN = 150, 30


def news_rows(seed: int, signal: float, cache: Path) -> list[tuple[int, str, float, float]]:
    data = load_market(SyntheticConfig(tickers=["ACME"], start="2023-01-02", days=240, seed=seed, signal=signal, news_per_day=2.5), cache)
    view = data.view(len(data.dates) - 1)
    closes = view.series("ACME", "close")
    rows = []
    for n in view.news("ACME"):
        s = bisect.bisect_left(data.closes_utc, n.public_at)
        if s + 3 < len(closes):
            label = ((closes[s + 1] - closes[s]) + (closes[s + 3] - closes[s])) / closes[s]
            rows.append((s, news_text(n, 220), float(label), float(data.truth.item_sentiment.get(n.id, 0.0))))
    return rows


def score(p: np.ndarray, base: float, tone: np.ndarray) -> tuple[float, float]:
    if p.std() == 0:
        return 0.0, 0.0
    return float(np.corrcoef(p, tone)[0, 1]), float((((p - base) > 0) == (tone > 0)).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--hidden-states", action="store_true", help="also the SmolLM2 hidden-state reader (loads the model)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    memory = MemoryConfig()
    embed = EmbeddingFeaturizer(
        make_embedding_function(memory, cache_path=REPO / ".cache" / "tradegraph" / "embeddings.sqlite"), embedding_model_id(memory)
    )
    readers = {
        "embeddings (default)": (LearningConfig(), embed),
        "embeddings, 4 folds": (LearningConfig(oof_folds=4), embed),
        "embeddings, decay 300": (LearningConfig(weight_decay=300.0), embed),
    }
    if args.hidden_states:
        from agents.llm.local_model import LocalModelRef

        hs = LearningConfig(features="hidden_states", weight_decay=300.0, oof_folds=4)
        ref = LocalModelRef(None, threads=2)
        readers["hidden states (first release)"] = (hs, make_featurizer(ref, hs, cache_dir=REPO / ".cache" / "tradegraph" / "features"))
    rows: list[dict] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for signal in (0.8, 0.0):
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                news = news_rows(seed, signal, Path(tmp))
                train = [r for r in news if r[0] + 3 <= WARMUP]
                later = [r for r in news if r[0] >= WARMUP + TRAIN and r[3] != 0]
                tone = np.array([r[3] for r in later])
                for name, (config, feat) in readers.items():
                    adapter = RewardAdapter(config, feat)
                    report = adapter.fit([TrainingExample(text=r[1], outcome=r[2]) for r in train])
                    corr, acc = score(adapter.predict_proba([r[1] for r in later]), adapter.base_rate, tone)
                    rows.append({"signal": signal, "seed": seed, "reader": name, "open": report.shrink > 0, "evidence": report.evidence,
                                 "corr": corr, "accuracy": acc})
                from sklearn.feature_extraction.text import TfidfVectorizer
                from sklearn.linear_model import LogisticRegression

                vec = TfidfVectorizer(ngram_range=(1, 2), max_features=20_000).fit([r[1] for r in train])
                y = np.array([r[2] > 0 for r in train])
                model = LogisticRegression(C=1.0, max_iter=2000).fit(vec.transform([r[1] for r in train]), y)
                p = model.predict_proba(vec.transform([r[1] for r in later]))[:, 1]
                corr, acc = score(p, float(y.mean()), tone)
                rows.append({"signal": signal, "seed": seed, "reader": "tfidf (news_tfidf's reader, no gate)", "open": True,
                             "evidence": float("nan"), "corr": corr, "accuracy": acc})
                print(f"signal {signal:g} seed {seed}: " + ", ".join(
                    f"{r['reader'].split(' (')[0]} {'open' if r['open'] else 'shut'} {r['corr']:+.2f}" for r in rows[-len(readers) - 1:]), flush=True)
    print(f"\n({time.perf_counter() - started:.0f} s)\n")
    print("| news signal | reader | gate open | corr with true tone, where open | side accuracy, where open |")
    print("|---|---|---|---|---|")
    for signal in (0.8, 0.0):
        for name in [*readers, "tfidf (news_tfidf's reader, no gate)"]:
            sel = [r for r in rows if r["signal"] == signal and r["reader"] == name]
            opened = [r for r in sel if r["open"]]
            corr = f"{np.mean([r['corr'] for r in opened]):+.2f}" if opened else "—"
            acc = f"{np.mean([r['accuracy'] for r in opened]):.2f}" if opened else "—"
            print(f"| {signal:g} | {name} | {len(opened)}/{len(sel)} | {corr} | {acc} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
