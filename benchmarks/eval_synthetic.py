"""Does the agent trade on what it reads? The demo scenario at its own lengths, on seeds with
informative news and with pure-noise news, through the project's own engine and broker (costs in).

    .venv/bin/python benchmarks/eval_synthetic.py [--seeds 10] [--first-seed 100] [--signals 0.8,0]
        [--arms agent,agent_truth] [--workers 2] [--runs-dir runs/eval] [--out eval.json] [--readme]

Per seed and signal it runs the arms (``agent``: the scenario as configured; ``agent_truth``: the
same agent whose analysts read every news item with its true tone, ``agents.llm.truth_reader``,
the evaluation-only backend that measures the pipeline when reading is perfect) and the references
buy-and-hold, ``news_oracle`` (knows each item's true tone), ``news_oracle_sign`` (knows only its sign:
the bound for analysts that get every label right), ``news_tfidf`` (TF-IDF + logistic
regression on matured labels) and MACD, each with Sharpe, return, max drawdown, exposure and fills.

Carrying apart from reading: each agent run's traced target weights are replayed through the engine
(``carrying``: the run's Sharpe again when the replay is faithful) and with the same entries and exits
at full weight, so the table shows what sizing added or cost beside what the timing earned.

Per signal group: the mean gap to buy-and-hold of every strategy with a bootstrap 95 % CI over
seeds and a paired Wilcoxon p-value (``env.stats.paired_gap``), wins over buy-and-hold, and the
**share of the oracle's edge** captured: mean(x - B&H) / mean(oracle - B&H).

Runs live in ``--runs-dir`` under deterministic names, so a killed eval resumes: finished runs are
read back from their folders, interrupted ones resume from their checkpoints. Jobs run in
``--workers`` processes (one local-model thread each). ``--readme`` prints the README tables from
the JSON (``--from-json FILE`` prints them without running anything). A flat test period has an
undefined Sharpe; it is counted as 0.

Targets (issue 11, signal 0.8): share of the oracle's edge >= 50 %; with the truth-reading
analysts >= 80 %; agent mean Sharpe above news_tfidf's; above B&H on >= 8 of 10 seeds; the 95 % CI
of the mean gap above 0. Noise: mean gap to B&H >= -0.2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
ARMS = ("agent", "agent_truth")
REFERENCES = ("buy_and_hold", "news_oracle", "news_oracle_sign", "news_tfidf", "macd")


def _num(value: Any) -> float:
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _summary(metrics: dict[str, Any], fills: int) -> dict[str, float]:
    return {
        "sharpe": _num(metrics.get("sharpe")), "return": _num(metrics.get("cumulative_return")),
        "max_drawdown": _num(metrics.get("max_drawdown")), "exposure": _num(metrics.get("exposure")), "fills": fills,
    }


def _config(scenario: Path, runs: Path, seed: int, signal: float, arm: str, extra: dict[str, Any]):
    from agents.config import load_scenario

    overrides = {"seed": seed, "data.seed": seed, "data.signal": signal, "runs_dir": str(runs),
                 "name": f"eval-{arm.replace('_', '-')}-s{seed}-k{signal:g}", "llm.backends.local.threads": 1}
    overrides.update(extra)
    return load_scenario(scenario, overrides)


def run_job(scenario: str, runs: str, seed: int, signal: float, arm: str, extra: dict[str, Any],
            warm: str | None = None) -> dict[str, Any]:
    """One (seed, signal, arm): run, resume or read back the run; returns its row."""
    from agents.llm.truth_reader import TruthReader
    from agents.runtime import execute, has_checkpoint, load_data
    from agents.state import ANALYST_AGENTS
    from agents.sweep import seed_llm_cache

    config = _config(Path(scenario), Path(runs), seed, signal, arm, extra)
    run_dir = Path(runs) / config.run_id()
    started = time.perf_counter()
    if not (run_dir / "metrics.json").exists():
        if warm:
            # The answers earlier runs recorded on the same data (an ablation downstream of the analysts
            # replays theirs); every hit is an answer the same model gave the very same request.
            seed_llm_cache(config, run_dir, (Path(warm).resolve(),))
        data = load_data(config)
        wrap = None
        if arm == "agent_truth":
            readers = set(ANALYST_AGENTS.values())
            wrap = lambda agent, llm: TruthReader(llm, data) if agent in readers else llm  # noqa: E731
        outcome = execute(config, resume=has_checkpoint(run_dir / "checkpoints.sqlite"), progress=False, data=data,
                          wrap_llm=wrap)
        if not outcome.finished:
            raise RuntimeError(f"{config.run_id()}: {outcome.message}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    fills = max(0, len((run_dir / "fills.csv").read_text().strip().splitlines()) - 1)
    data = load_data(config)
    return {"seed": seed, "signal": signal, "arm": arm, "run_id": config.run_id(), **_summary(metrics, fills),
            **reading(run_dir, data), **carrying(run_dir, config, data), "seconds": time.perf_counter() - started}


class _TargetReplay:
    """A strategy that submits, at each traced decision session, the weights the run's risk node set."""

    def __init__(self, targets: dict[int, dict[str, float]]) -> None:
        self.targets = targets

    def on_bar(self, view: Any, portfolio: Any) -> list[Any]:
        from env.broker import TargetWeightOrder

        return [TargetWeightOrder(t, w) for t, w in sorted(self.targets.get(view.index, {}).items())]


def carrying(run_dir: Path, config: Any, data: Any) -> dict[str, float | None]:
    """Evaluation only: how the run's sizing shaped its Sharpe, apart from its timing.

    The risk node's traced target weights of the test sessions are replayed through the same engine
    and broker (``replay_sharpe``: equal to the run's own Sharpe when the replay is faithful), then
    with every long target set to a full, equal weight and every other to 0 (``full_weight_sharpe``:
    the same entries and exits without Kelly, the CVaR budget or the turnover caps). Their difference
    is what sizing added (+) or cost (-); Sharpe is scale-free, so a position held at a third of the
    equity loses nothing by being small, only by being resized at the wrong times."""
    from agents.trace import read_traces
    from agents.runtime import schedule_for
    from env.engine import run_backtest

    targets: dict[int, dict[str, float]] = {}
    for r in read_traces(run_dir):
        if r["node"] == "risk" and r.get("phase") == "test" and r.get("ticker"):
            targets.setdefault(int(r["day"]), {})[r["ticker"]] = float(r["target_weight"])
    if not targets:
        return {"replay_sharpe": None, "full_weight_sharpe": None}
    sched = schedule_for(config, data)
    full = 1.0 / len(data.tickers)
    threshold = config.risk.min_trade_weight
    variants = {
        "replay_sharpe": targets,
        "full_weight_sharpe": {d: {t: (full if w >= threshold else 0.0) for t, w in ws.items()} for d, ws in targets.items()},
    }
    out: dict[str, float | None] = {}
    for name, weights in variants.items():
        res = run_backtest(data, _TargetReplay(weights), config.broker, start=sched.test_start, end=sched.end_day + 1)
        out[name] = _num(res.metrics.get("sharpe"))
    return out


def reading(run_dir: Path, data: Any) -> dict[str, float | None]:
    """Evaluation only: how well the run read its test-period news, against each item's true tone.

    ``analyst_accuracy``: the side of the news analyst's call, P(pos) - P(neg) against the median of
    its calls in the run (a model that calls everything "positive" is read by its deviations);
    ``reader_accuracy``: the side of the reward-trained reader, P(up) against its base rate, on the
    items where its gate was open (``reader_coverage`` of them). Non-neutral items only.
    ``signal_corr``: corr(log-odds of the direction's news signal, the true news drift of the next
    session) over the test decisions: reading at the level of what is traded (the news window model)."""
    from agents.trace import read_traces
    from env.news_baselines import make_news_strategy

    truth = data.truth.item_sentiment if data.truth is not None else {}
    items = [i for r in read_traces(run_dir) if r["node"] == "news_analyst" and r.get("phase") == "test" for i in r.get("items", [])]
    items = [i for i in items if truth.get(i["item_id"], 0.0) != 0.0]
    signal, drift = [], []
    if data.truth is not None and data.truth.item_sentiment:
        oracle = make_news_strategy("news_oracle", data, horizon_days=3)
        for r in read_traces(run_dir):
            if r["node"] == "direction" and r.get("phase") == "test":
                p = min(max(float(r["components"]["news_p_up"]), 1e-6), 1 - 1e-6)
                signal.append(math.log(p / (1 - p)))
                drift.append(oracle.drift(data.view(r["day"]), r["ticker"]))
    signal_corr = None
    if len(signal) > 2 and min(_std(signal), _std(drift)) > 0:
        ms, md = sum(signal) / len(signal), sum(drift) / len(drift)
        cov = sum((a - ms) * (b - md) for a, b in zip(signal, drift)) / len(signal)
        signal_corr = cov / (_std(signal) * _std(drift))
    if not items:
        return {"analyst_accuracy": None, "reader_accuracy": None, "reader_coverage": 0.0, "signal_corr": signal_corr}
    scores = [i["probs"]["positive"] - i["probs"]["negative"] for i in items]
    mid = sorted(scores)[len(scores) // 2]
    # Above the median = a "positive" call; a call exactly at the median (ties: a model with few
    # distinct answers, e.g. the truth reader) is read by its own sign.
    analyst = sum(((s > mid) or (s == mid and s > 0)) == (truth[i["item_id"]] > 0) for s, i in zip(scores, items)) / len(items)
    base = {}
    for r in read_traces(run_dir):
        if r["node"] == "direction" and r.get("phase") == "test":
            base[r["day"]] = r["components"]["base_rate"]
    read = []
    for r in read_traces(run_dir):
        if r["node"] == "news_analyst" and r.get("phase") == "test" and r["day"] in base:
            for i in r.get("items", []):
                p = i.get("adapter_p_up")
                if p is not None and truth.get(i["item_id"], 0.0) != 0.0 and abs(p - base[r["day"]]) > 1e-9:
                    read.append((p > base[r["day"]]) == (truth[i["item_id"]] > 0))
    return {"analyst_accuracy": analyst, "reader_accuracy": (sum(read) / len(read)) if read else None,
            "reader_coverage": len(read) / len(items), "signal_corr": signal_corr}


def _std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def references(scenario: str, runs: str, seed: int, signal: float, extra: dict[str, Any]) -> dict[str, dict[str, float]]:
    """buy-and-hold, news_oracle, news_oracle_sign, news_tfidf and MACD on the run's test period, with their fills."""
    from agents.runtime import load_data, news_references, schedule_for
    from env.baselines import make_strategy
    from env.engine import run_backtest
    from env.news_baselines import make_news_strategy

    config = _config(Path(scenario), Path(runs), seed, signal, "agent", extra)
    data = load_data(config)
    sched = schedule_for(config, data)
    strategies = {"buy_and_hold": make_strategy("buy_and_hold"), "macd": make_strategy("macd"), **news_references(config, data)}
    # The oracle that knows only each tone's sign: what the truth-reading analysts' labels carry.
    strategies["news_oracle_sign"] = make_news_strategy(
        "news_oracle", data, horizon_days=getattr(config.data, "signal_horizon_days", 3), tones="sign")
    out = {}
    for name in REFERENCES:
        res = run_backtest(data, strategies[name], config.broker, start=sched.test_start, end=sched.end_day + 1)
        out[name] = _summary(res.metrics, len(res.fills))
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per signal: each strategy's mean Sharpe, its gap to B&H (CI, Wilcoxon) and share of the oracle's edge."""
    from env.stats import paired_gap

    out: dict[str, Any] = {}
    for signal in sorted({r["signal"] for r in rows}, reverse=True):
        group = [r for r in rows if r["signal"] == signal]
        bh = [r["sharpe"]["buy_and_hold"] for r in group]
        oracle = paired_gap([r["sharpe"]["news_oracle"] for r in group], bh)
        # The share is defined only where the oracle's edge is real (its CI above 0); on noise it is not.
        oracle_gap = oracle["mean_gap"] if oracle["lo"] > 0 else math.nan
        # The same against the oracle that knows only each tone's sign (what a perfect label carries).
        signed = [r for r in group if "news_oracle_sign" in r["sharpe"]]
        sign = paired_gap([r["sharpe"]["news_oracle_sign"] for r in signed], [r["sharpe"]["buy_and_hold"] for r in signed]) if signed else None
        sign_gap = sign["mean_gap"] if sign and sign["lo"] > 0 and len(signed) == len(group) else math.nan
        strategies = {}
        for name in [*ARMS, *REFERENCES]:
            have = [r for r in group if name in r["sharpe"]]
            if not have or name == "buy_and_hold":
                continue
            values = [r["sharpe"][name] for r in have]
            gap = paired_gap(values, [r["sharpe"]["buy_and_hold"] for r in have])
            strategies[name] = {
                "seeds": len(have), "mean_sharpe": sum(values) / len(values), **gap,
                "oracle_share": gap["mean_gap"] / oracle_gap, "sign_oracle_share": gap["mean_gap"] / sign_gap,
            }
        # Sizing apart from timing (``carrying``): the run's Sharpe minus that of its own entries and
        # exits at full weight, paired over seeds.
        sizing = {}
        for arm in ARMS:
            pairs = [(r["detail"][arm]["sharpe"], r["detail"][arm]["full_weight_sharpe"]) for r in group
                     if r.get("detail", {}).get(arm, {}).get("full_weight_sharpe") is not None]
            if len(pairs) >= 2:
                sizing[arm] = {"seeds": len(pairs), **paired_gap([a for a, _ in pairs], [b for _, b in pairs])}
        out[f"{signal:g}"] = {"seeds": len(group), "bh_mean_sharpe": sum(bh) / len(bh), "strategies": strategies,
                              "sizing_effect": sizing}
    return out


def readme_tables(result: dict[str, Any]) -> str:
    lines = ["| news signal | strategy | seeds | mean test Sharpe | mean gap to B&H [95 % CI] | Wilcoxon p | above B&H "
             "| share of oracle's edge | share of sign oracle's edge |",
             "|---|---|---|---|---|---|---|---|---|"]

    def share(value: Any) -> str:
        return "—" if value is None or math.isnan(value) else f"{value:.0%}"

    for signal, group in result["summary"].items():
        lines.append(f"| {signal} | buy-and-hold | {group['seeds']} | {group['bh_mean_sharpe']:+.2f} | — | — | — | — | — |")
        for name, s in group["strategies"].items():
            lines.append(
                f"| {signal} | {name} | {s['seeds']} | {s['mean_sharpe']:+.2f} | {s['mean_gap']:+.2f} [{s['lo']:+.2f}, {s['hi']:+.2f}] "
                f"| {s['p_wilcoxon']:.3f} | {int(s['wins'])}/{s['seeds']} | {share(s['oracle_share'])} | {share(s.get('sign_oracle_share'))} |"
            )
    effects = [(signal, arm, e) for signal, group in result["summary"].items() for arm, e in group.get("sizing_effect", {}).items()]
    if effects:
        lines += ["", "| news signal | arm | seeds | sizing's effect on Sharpe: run minus its own timing at full weight [95 % CI] |",
                  "|---|---|---|---|"]
        lines += [f"| {signal} | {arm} | {e['seeds']} | {e['mean_gap']:+.2f} [{e['lo']:+.2f}, {e['hi']:+.2f}] |" for signal, arm, e in effects]
    lines += ["", "| news signal | seed | " + " | ".join(f"{n} Sharpe" for n in [*ARMS, *REFERENCES])
              + " | agent return | agent fills | agent exposure | analyst side accuracy | reader side accuracy (coverage) | news signal corr with true drift |",
              "|---|---|" + "---|" * (len(ARMS) + len(REFERENCES) + 6)]

    def pct(value: Any) -> str:
        return "—" if value is None else f"{value:.2f}"

    for r in sorted(result["rows"], key=lambda r: (-r["signal"], r["seed"])):
        cells = [f"{r['sharpe'][n]:+.2f}" if n in r["sharpe"] else "—" for n in [*ARMS, *REFERENCES]]
        agent = r.get("detail", {}).get("agent")
        tail = (f" | {agent['return']:+.2%} | {agent['fills']} | {agent['exposure']:.2f} | {pct(agent.get('analyst_accuracy'))} | "
                f"{pct(agent.get('reader_accuracy'))} ({agent.get('reader_coverage', 0):.0%}) | {pct(agent.get('signal_corr'))} |") if agent else " | — | — | — | — | — | — |"
        lines.append(f"| {r['signal']:g} | {r['seed']} | " + " | ".join(cells) + tail)
    return "\n".join(lines)


def sweep_agreement(rows: list[dict[str, Any]], sweep_dir: Path) -> str:
    """The agent's test Sharpe per (signal, seed) in this eval next to the same cell of ``run.py sweep
    scenarios/sweeps/learning_eval.yaml`` (every finished ``agent-full-*`` cell folder under
    ``sweep_dir/cells``, whichever invocation ran it): the sweep reproduces the eval when they agree."""
    swept: dict[tuple[float, int], float] = {}
    for metrics_file in sorted((sweep_dir / "cells").glob("agent-full-*/metrics.json")):
        config = json.loads((metrics_file.parent / "config.json").read_text())
        sharpe = json.loads(metrics_file.read_text()).get("sharpe")
        swept[(float(config["data"]["signal"]), int(config["data"]["seed"]))] = math.nan if sharpe is None else float(sharpe)
    lines = [f"{'signal':>6} {'seed':>5} {'eval':>8} {'sweep':>8} {'diff':>9}"]
    diffs = []
    for row in sorted(rows, key=lambda r: (-r["signal"], r["seed"])):
        mine, theirs = row["sharpe"].get("agent"), swept.get((float(row["signal"]), int(row["seed"])))
        if mine is None or theirs is None:
            lines.append(f"{row['signal']:>6g} {row['seed']:>5d} {'-' if mine is None else f'{mine:+.3f}':>8} "
                         f"{'-' if theirs is None else f'{theirs:+.3f}':>8} {'missing':>9}")
            continue
        theirs = 0.0 if math.isnan(theirs) else theirs  # a flat test period counts as 0, as in the eval
        diffs.append(abs(mine - theirs))
        lines.append(f"{row['signal']:>6g} {row['seed']:>5d} {mine:+8.3f} {theirs:+8.3f} {mine - theirs:+9.2e}")
    lines.append(f"{len(diffs)} cells compared; max |eval - sweep| = {max(diffs) if diffs else math.nan:.2e}")
    return "\n".join(lines)


def variant_effect(variant: dict[str, Any], base: dict[str, Any], arms: tuple[str, ...] = ARMS) -> str:
    """An ablation read off two eval JSONs on the same seeds: per arm and signal, each seed's Sharpe in
    ``base`` and in ``variant`` (the same eval with ``--set`` overrides) and the paired effect
    variant - base with its bootstrap 95 % CI and Wilcoxon p; and the share of the oracle's edge of
    both on exactly the seeds both ran (so a partial variant is compared like for like)."""
    from env.stats import paired_gap

    lines = [f"variant {json.dumps(variant.get('overrides', {}))} against base {json.dumps(base.get('overrides', {}))}"]
    by_seed = {(r["signal"], r["seed"]): r for r in base["rows"]}
    for arm in arms:
        for signal in sorted({r["signal"] for r in variant["rows"]}, reverse=True):
            pairs = [(r, by_seed[(signal, r["seed"])]) for r in variant["rows"] if r["signal"] == signal
                     and arm in r["sharpe"] and (signal, r["seed"]) in by_seed and arm in by_seed[(signal, r["seed"])]["sharpe"]]
            if not pairs:
                continue
            new = [v["sharpe"][arm] for v, _ in pairs]
            old = [b["sharpe"][arm] for _, b in pairs]
            effect = paired_gap(new, old)
            lines.append(f"{arm} at signal {signal:g}, seeds {', '.join(str(v['seed']) for v, _ in pairs)}:")
            lines.append("  seed   base  variant")
            lines += [f"  {v['seed']:>4d} {b['sharpe'][arm]:+6.2f} {v['sharpe'][arm]:+8.2f}" for v, b in pairs]
            lines.append(f"  effect on Sharpe {effect['mean_gap']:+.2f} [{effect['lo']:+.2f}, {effect['hi']:+.2f}], "
                         f"Wilcoxon p {effect['p_wilcoxon']:.3f}, better on {int(effect['wins'])}/{int(effect['n'])}")
            bh = [b["sharpe"]["buy_and_hold"] for _, b in pairs]
            edge = sum(b["sharpe"]["news_oracle"] for _, b in pairs) - sum(bh)
            if edge > 0:
                lines.append(f"  share of the oracle's edge on these seeds: base {(sum(old) - sum(bh)) / edge:.0%}, "
                             f"variant {(sum(new) - sum(bh)) / edge:.0%}")
    return "\n".join(lines)


def merge_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One eval result from several that ran the same scenario and overrides on different seeds or
    arms (``--merge``): rows joined by (signal, seed), each strategy's numbers taken from the file
    that has them, then summarised afresh. Refuses files of different variants, and a strategy that
    two files report differently for one seed (the references are deterministic, so they must agree)."""
    if not results:
        raise ValueError("--merge needs at least one --from-json file")
    def which(result: dict[str, Any]) -> tuple[str, str]:  # the scenario file as the repo names it (checkouts differ)
        return "/".join(Path(str(result.get("scenario"))).parts[-2:]), json.dumps(result.get("overrides", {}), sort_keys=True)

    variant = which(results[0])
    rows: dict[tuple[float, int], dict[str, Any]] = {}
    for result in results:
        other = which(result)
        if other != variant:
            raise ValueError(f"cannot merge evals of different variants: {variant} and {other}")
        for row in result["rows"]:
            key = (float(row["signal"]), int(row["seed"]))
            merged = rows.setdefault(key, {"signal": row["signal"], "seed": row["seed"], "sharpe": {}, "detail": {}})
            for name, value in row["sharpe"].items():
                known = merged["sharpe"].get(name)
                if known is not None and not (math.isclose(known, value, rel_tol=1e-9, abs_tol=1e-9) or math.isnan(known) and math.isnan(value)):
                    raise ValueError(f"seed {key[1]} signal {key[0]:g}: {name} has Sharpe {known} in one file, {value} in another")
                merged["sharpe"][name] = value
                merged["detail"][name] = row["detail"].get(name, merged["detail"].get(name))
    ordered = [rows[key] for key in sorted(rows, key=lambda k: (-k[0], k[1]))]
    return {"rows": ordered, "summary": summarise(ordered), "failures": [f for r in results for f in r.get("failures", [])],
            "scenario": results[0].get("scenario"), "overrides": results[0].get("overrides", {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "demo.yaml")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--signals", default="0.8,0", help="comma-separated news signals (0.4 for the weak group)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"agent arms to run, from {list(ARMS)} (empty: references only)")
    parser.add_argument("--workers", type=int, default=2, help="parallel worker processes")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "eval", help="where the runs live (resume reads them back)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra scenario override")
    parser.add_argument("--out", type=Path, help="write rows and summary as JSON")
    parser.add_argument("--readme", action="store_true", help="print the README tables")
    parser.add_argument("--from-json", type=Path, action="append", default=[],
                        help="print the tables of an earlier --out file and exit (repeatable with --against-sweep)")
    parser.add_argument("--against-sweep", type=Path, help="with --from-json: compare the agent's Sharpe per seed with the "
                        "same cells of a learning_eval sweep's output folder")
    parser.add_argument("--merge", action="store_true", help="with --from-json A.json B.json ...: one result from evals of the "
                        "same variant on different seeds or arms (written to --out, its README tables printed)")
    parser.add_argument("--against", type=Path, help="with --from-json VARIANT.json: the paired effect of the variant "
                        "(an eval run with --set overrides) against this base eval JSON on the seeds both ran")
    parser.add_argument("--warm-cache", type=Path, help="an earlier eval's runs dir (or a sweep's folder): each new run "
                        "starts from the union of the LLM caches of the runs there on the same data (agents.sweep.seed_llm_cache)")
    args = parser.parse_args()
    if args.warm_cache is not None and not args.warm_cache.is_dir():
        parser.error(f"--warm-cache: {args.warm_cache} is not a folder")
    if args.from_json:
        results = [json.loads(path.read_text()) for path in args.from_json]
        if args.merge:
            try:
                results = [merge_results(results)]
            except ValueError as exc:
                parser.error(str(exc))
            if args.out:
                args.out.write_text(json.dumps(results[0], indent=2))
        if args.against:
            base = json.loads(args.against.read_text())
            for result in results:
                print(variant_effect(result, base))
        elif args.against_sweep:
            print(sweep_agreement([row for result in results for row in result["rows"]], args.against_sweep))
        else:
            for result in results:
                print(readme_tables(result))
        return 0
    import yaml

    extra = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    signals = [float(s) for s in args.signals.split(",") if s.strip()]
    arms = [a for a in args.arms.split(",") if a.strip()]
    unknown = set(arms) - set(ARMS)
    if unknown:
        parser.error(f"unknown arm(s) {sorted(unknown)}; choose from {list(ARMS)}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[tuple[float, int], dict[str, Any]] = {}
    for signal in signals:
        for seed in seeds:
            refs = references(str(args.scenario), str(args.runs_dir), seed, signal, extra)
            rows[(signal, seed)] = {"signal": signal, "seed": seed, "sharpe": {n: v["sharpe"] for n, v in refs.items()}, "detail": refs}
    warm = str(args.warm_cache) if args.warm_cache else None
    jobs = [(str(args.scenario), str(args.runs_dir), seed, signal, arm, extra, warm) for signal in signals for seed in seeds for arm in arms]
    failures = []
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        futures = {pool.submit(run_job, *job): job for job in jobs}
        for future in as_completed(futures):
            _, _, seed, signal, arm, _, _ = futures[future]
            try:
                row = future.result()
            except (RuntimeError, OSError, ValueError) as exc:
                failures.append(f"{arm} seed {seed} signal {signal:g}: {exc}")
                print(f"FAILED {failures[-1]}", flush=True)
                continue
            rows[(signal, seed)]["sharpe"][arm] = row["sharpe"]
            rows[(signal, seed)]["detail"][arm] = row
            bh = rows[(signal, seed)]["sharpe"]["buy_and_hold"]
            print(f"signal={signal:<4g} seed={seed:<4d} {arm:<12} Sharpe {row['sharpe']:+7.2f} (B&H {bh:+7.2f})  "
                  f"return {row['return']:+.2%}  exposure {row['exposure']:.2f}  fills {row['fills']}  ({row['seconds']:.0f} s)", flush=True)
    result = {"rows": list(rows.values()), "summary": summarise(list(rows.values())), "failures": failures,
              "scenario": str(args.scenario), "overrides": extra}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    print()
    print(readme_tables(result) if args.readme else json.dumps(result["summary"], indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
