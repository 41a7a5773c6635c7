"""The news analyst's prompt: speed and reading, the shipped template against a peer template, on
the same synthetic items, the same model and the calls the agent makes (the demo scenario's data and
``analysts.max_item_chars``; one calibrated ``choose_many`` per publication day's items, over
positive / negative / neutral / irrelevant).

    .venv/bin/python benchmarks/bench_analyst_prompt.py [--seeds 100,103] [--sessions 40] [--signal 0.8]
        [--peer benchmarks/prompts/news_analyst.md]

The peer is the previous release's template (the question after the article, so only the system
message's KV cache was shared between items); the shipped one asks the question in the system
message, before the article, so every item of a ticker reuses the cached question. The two run
interleaved session by session (the order alternates), so machine load hits both alike.

Per template: seconds per item (calibration's content-free call included, as in a run), the
correlation of the impact score P(positive) - P(negative) with the item's true tone (which the
model never sees), the sign accuracy of the score centred on its own mean over non-neutral items
(the judgement calibrator reads scores against the analyst's neutral call, not against 0), the
mean score and the mean P(irrelevant).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.analysts import IMPACT_OPTIONS, item_prompt, news_text  # noqa: E402
from agents.config import load_scenario  # noqa: E402
from agents.llm.base import ChoiceRequest  # noqa: E402
from agents.llm.config import LocalBackendConfig  # noqa: E402
from agents.llm.local import LocalBackend  # noqa: E402
from agents.prompts import PromptLibrary  # noqa: E402
from env.sources import load_market  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="100,103", help="comma-separated synthetic seeds (the demo's data, one ticker)")
    parser.add_argument("--sessions", type=int, default=40, help="news days read per seed")
    parser.add_argument("--signal", type=float, default=0.8)
    parser.add_argument("--peer", type=Path, default=REPO / "benchmarks" / "prompts" / "news_analyst.md",
                        help="the peer news_analyst.md")
    args = parser.parse_args()
    if args.peer.name != "news_analyst.md" or not args.peer.is_file():
        parser.error(f"--peer: expected a news_analyst.md file, got {args.peer}")
    libraries = {"shipped": PromptLibrary(REPO / "prompts"), "peer": PromptLibrary(args.peer.parent)}
    backend = LocalBackend(LocalBackendConfig())
    rows: dict[str, dict[str, list]] = {name: {"tone": [], "probs": [], "seconds": []} for name in libraries}
    demo = load_scenario(REPO / "scenarios" / "demo.yaml")
    max_chars = demo.analysts.max_item_chars
    turn = 0
    for seed in (int(s) for s in args.seeds.split(",") if s):
        data = load_market(demo.data.model_copy(update={"seed": seed, "signal": args.signal}), Path(demo.cache_dir))
        assert data.truth is not None
        tone = data.truth.item_sentiment
        by_day: dict[str, list] = {}
        for n in data.news:
            by_day.setdefault(str(n.published_at.date()), []).append(n)
        for day in sorted(by_day)[: args.sessions]:
            items = by_day[day]
            order = ("shipped", "peer") if turn % 2 == 0 else ("peer", "shipped")
            turn += 1
            for name in order:
                requests = [
                    ChoiceRequest(
                        messages=item_prompt(libraries[name], "news_analyst", ticker=n.ticker, date=day, item=news_text(n, max_chars)).chat(),
                        options=IMPACT_OPTIONS, fallback="irrelevant",
                    )
                    for n in items
                ]
                started = time.perf_counter()
                results = backend.choose_many(requests, agent="news_analyst")
                rows[name]["seconds"].append(time.perf_counter() - started)
                rows[name]["tone"] += [tone.get(n.id, 0.0) for n in items]
                rows[name]["probs"] += [r.probs for r in results]
    per_item = {name: sum(r["seconds"]) / len(r["tone"]) for name, r in rows.items()}
    print(f"news analyst prompt, seeds {args.seeds}, {args.sessions} news days each, signal {args.signal}, "
          f"{len(rows['shipped']['tone'])} items per template")
    print(f"{'template':<9} {'s/item':>7} {'peer/this':>9} {'corr(tone)':>10} {'sign acc':>8} {'mean score':>10} {'P(irr)':>7}")
    for name, r in rows.items():
        t = np.asarray(r["tone"])
        score = np.asarray([p["positive"] - p["negative"] for p in r["probs"]])
        centred = score - score.mean()
        mask = t != 0
        accuracy = float(np.mean(np.sign(centred[mask]) == np.sign(t[mask])))
        corr = float(np.corrcoef(score, t)[0, 1])
        irrelevant = float(np.mean([p["irrelevant"] for p in r["probs"]]))
        print(f"{name:<9} {per_item[name]:>7.3f} {per_item['peer'] / per_item[name]:>8.2f}x {corr:>+10.3f} {accuracy:>8.3f} "
              f"{score.mean():>+10.3f} {irrelevant:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
