"""What ``metrics.json`` adds to the plain metrics: the run's statistics and its cost and latency.

Both are pure functions of what a finished run already has (its equity curve, its trace records,
its accounting totals), so the report and the sweep table can recompute them from a run folder.

Cost conventions: a ticker-day is one ticker in one session in which the graph decided. Tokens and
dollars count model calls only (a cache hit is free, as in ``agents.llm.accounting``);
``model_calls`` is the trace records' ``model_calls`` (backend invocations); ``seconds`` sums the
nodes' ``latency_s`` (the graph's own wall time, without start-up or time spent killed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

COST_KEYS = ("tokens_in", "tokens_out", "tokens", "cost_usd", "model_calls", "llm_calls", "cache_hits", "seconds")
PHASES = ("train", "test")


def cost_metrics(records: Iterable[dict[str, Any]], n_tickers: int, accounting: dict[str, Any] | None = None) -> dict[str, Any]:
    """Totals and per-ticker-day figures of tokens, dollars, model calls and seconds, per phase.

    Returns ``{"train": {...}, "test": {...}, "all": {...}}``; each holds ``sessions``,
    ``ticker_days``, the totals ``COST_KEYS`` and the same divided by ticker-days under
    ``per_ticker_day`` (NaN with no ticker-day). Records of the finish node count in ``all`` only.
    With ``accounting`` (the run's ``AccountingState`` as a dict) its run-wide totals are added
    under ``"accounting"`` (they include retries, which traces show only as attempts).
    """
    if n_tickers < 1:
        raise ValueError(f"n_tickers must be at least 1, got {n_tickers}")
    totals = {phase: dict.fromkeys(COST_KEYS, 0.0) for phase in (*PHASES, "all")}
    days: dict[str, set[int]] = {phase: set() for phase in (*PHASES, "all")}
    for rec in records:
        phase = str(rec.get("phase", ""))
        targets = [totals["all"]] + ([totals[phase]] if phase in PHASES else [])
        if rec.get("node") == "open_session" and phase in PHASES:
            days[phase].add(int(rec["day"]))
            days["all"].add(int(rec["day"]))
        calls = rec.get("llm_calls") or []
        paid = [c for c in calls if not c.get("cache_hit")]
        add = {
            "tokens_in": sum(int(c.get("tokens_in", 0)) for c in paid),
            "tokens_out": sum(int(c.get("tokens_out", 0)) for c in paid),
            "cost_usd": sum(float(c.get("cost_usd", 0.0)) for c in paid),
            "model_calls": int(rec.get("model_calls", 0) or 0),
            "llm_calls": len(calls),
            "cache_hits": len(calls) - len(paid),
            "seconds": float(rec.get("latency_s", 0.0) or 0.0),
        }
        add["tokens"] = add["tokens_in"] + add["tokens_out"]
        for target in targets:
            for key, value in add.items():
                target[key] += value
    out: dict[str, Any] = {}
    for phase, total in totals.items():
        ticker_days = len(days[phase]) * n_tickers
        out[phase] = {
            "sessions": len(days[phase]),
            "ticker_days": ticker_days,
            **total,
            "per_ticker_day": {k: (v / ticker_days if ticker_days else math.nan) for k, v in total.items()},
        }
    if accounting:
        out["accounting"] = dict(accounting.get("total", {}))
    return out


def run_summary(equity: Any, records: Iterable[dict[str, Any]], n_tickers: int, *, seed: int,
                accounting: dict[str, Any] | None = None, n_boot: int = 1000) -> dict[str, Any]:
    """``{"statistics": ..., "cost": ...}`` for ``metrics.json``: ``env.stats.run_statistics`` of the
    test-period equity (bootstrap seeded by the run's seed, so a resumed run writes the same
    numbers) and ``cost_metrics`` of the traces."""
    from env.stats import run_statistics  # scipy: imported only when statistics are computed

    values = np.asarray(equity, dtype=float)
    return {
        "statistics": run_statistics(values, n_boot=n_boot, seed=seed),
        "cost": cost_metrics(records, n_tickers, accounting),
    }


def json_safe(value: Any) -> Any:
    """NaN and infinities as ``None`` (JSON has no NaN), recursively."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
