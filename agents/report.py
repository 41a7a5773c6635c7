"""Self-contained HTML reports: ``run.py report RUN_ID`` and ``run.py report --sweep DIR``.

One file, no network: the data is embedded as JSON in ``agents/report.html`` (inline CSS, inline
JS that draws SVG), so it opens offline and can be mailed. ``run_report_data`` and
``sweep_report_data`` collect what the page shows from a run or sweep folder; ``render_report``
writes the page. The statistics come from ``env.stats`` (one implementation everywhere).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.evaluation import cost_metrics, json_safe
from env.errors import ConfigError, TradegraphError

TEMPLATE = Path(__file__).with_name("report.html")
DATA_MARK = "/*__REPORT_DATA__*/null"
BASELINE_NAMES = ("buy_and_hold", "random", "macd", "rsi")
PROMPT_CHARS = 6000
TEXT_CHARS = 300
ANALYST_NODES = ("news_analyst", "filings_analyst", "macro_analyst", "market_analyst")


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _cut(text: Any, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def _baseline_curves(run_dir: Path, dates: list[str]) -> tuple[dict[str, list[float]], str]:
    """Baseline equity over the run's test dates, recomputed from the run's own config; ``({}, why)``
    when the data cannot be loaded here (e.g. a yfinance run without its cache)."""
    from pydantic import TypeAdapter, ValidationError

    from env.baselines import make_strategy
    from env.config import BrokerConfig, DataConfig
    from env.engine import run_backtest
    from env.sources import load_market

    # Only the env sections are read: agents.config would import the learning stack (torch), which
    # costs seconds and is not needed to draw baselines.
    raw = _read_json(run_dir / "config.json")
    try:
        data_config = TypeAdapter(DataConfig).validate_python(raw.get("data") or {})
        broker = BrokerConfig.model_validate(raw.get("broker") or {})
        data = load_market(data_config, Path(raw.get("cache_dir") or ".cache/tradegraph"))
    except ValidationError as exc:
        return {}, f"baseline curves not drawn: {run_dir / 'config.json'} data/broker: {exc.error_count()} problem(s)"
    except TradegraphError as exc:
        return {}, f"baseline curves not drawn: {exc}"
    seed = int(raw.get("seed", 0))
    index = {str(d)[:10]: i for i, d in enumerate(data.dates)}
    if not dates or dates[0] not in index or dates[-1] not in index:
        return {}, "baseline curves not drawn: the run's dates are not in its data"
    start, end = index[dates[0]], index[dates[-1]] + 1
    curves = {}
    for name in BASELINE_NAMES:
        params = {"seed": seed} if name == "random" else {}
        res = run_backtest(data, make_strategy(name, **params), broker, start=start, end=end)
        curves[name] = [float(v) for v in res.equity.to_numpy()]
    return curves, ""


def _drawdown(values: list[float]) -> list[float]:
    arr = np.asarray(values, dtype=float)
    if not arr.size:
        return []
    return (arr / np.maximum.accumulate(arr) - 1.0).tolist()


def _decision_trace(day_records: list[dict[str, Any]], ticker: str) -> dict[str, Any]:
    direction = next(r for r in day_records if r["node"] == "direction" and r.get("ticker") == ticker)
    risk = next((r for r in day_records if r["node"] == "risk" and r.get("ticker") == ticker), {})
    analysts = []
    for rec in day_records:
        if rec["node"] in ANALYST_NODES and rec.get("ticker") == ticker:
            analysts.append({
                "node": rec["node"],
                "summary": _cut(rec.get("summary"), TEXT_CHARS),
                "probs": rec.get("probs"),
                "items": [
                    {"item_id": _cut(i.get("item_id"), 80), "probs": i.get("probs"), "relevance": i.get("relevance"),
                     "impact": i.get("impact"), "stored": i.get("stored"), "reason": _cut(i.get("reason"), TEXT_CHARS)}
                    for i in rec.get("items", [])
                ],
            })
    calls = direction.get("llm_calls") or []
    return {
        "prompt": _cut(direction.get("prompt"), PROMPT_CHARS),
        "rationale": _cut(direction.get("rationale"), 2 * TEXT_CHARS),
        "probs": direction.get("probs") or {},
        "memories": [
            {"id": str(m.get("id", ""))[:12], "layer": m.get("layer"), "score": m.get("score"), "text": _cut(m.get("text"), TEXT_CHARS)}
            for m in direction.get("memories", [])
        ],
        "risk": {k: risk.get(k) for k in ("action", "target_weight", "prev_weight", "caps", "kelly_fraction", "payoff_ratio",
                                           "cvar", "p_win", "reason") if k in risk},
        "analysts": analysts,
        "llm": {"calls": len(calls), "tokens": sum(int(c.get("tokens_in", 0)) + int(c.get("tokens_out", 0)) for c in calls),
                "cache_hits": sum(1 for c in calls if c.get("cache_hit")), "latency_s": direction.get("latency_s")},
    }


def run_report_data(run_dir: Path) -> dict[str, Any]:
    """Everything the run page shows, from a finished run folder (see agents/runtime.py)."""
    from agents.trace import read_traces

    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file():
        raise ConfigError(f"{run_dir} has no metrics.json: the run has not finished (resume it first) or the path is wrong")
    metrics = _read_json(run_dir / "metrics.json")
    baselines = _read_json(run_dir / "baselines.json")
    config = _read_json(run_dir / "config.json")
    equity = pd.read_csv(run_dir / "equity.csv")
    dates = [str(d)[:10] for d in equity["date"]]
    values = [float(v) for v in equity["equity"]]
    curves, note = _baseline_curves(run_dir, dates)
    records = read_traces(run_dir)

    by_day: dict[int, list[dict[str, Any]]] = {}
    for rec in records:
        by_day.setdefault(int(rec["day"]), []).append(rec)
    weights_rows, moves, decisions, traces = [], [], [], {}
    for day in sorted(by_day):
        recs = by_day[day]
        for rec in recs:
            if rec["node"] == "open_session":
                weights_rows.append({"date": rec["date"][:10], "phase": rec["phase"], "equity": rec.get("equity"),
                                     "weights": rec.get("weights") or {}})
            for move in rec.get("moves") or []:
                moves.append({"date": rec["date"][:10], "node": rec["node"], "item_id": str(move.get("item_id", ""))[:12],
                              "from": move.get("from_layer"), "to": move.get("to_layer"), "cause": move.get("cause"),
                              "detail": _cut(move.get("detail"), TEXT_CHARS),
                              "importance": [move.get("importance_before"), move.get("importance_after")]})
            if rec["node"] == "direction":
                key = f"{day}:{rec.get('ticker', '')}"
                trace = _decision_trace(recs, rec.get("ticker", ""))
                decisions.append({"id": key, "day": day, "date": rec["date"][:10], "phase": rec["phase"],
                                  "ticker": rec.get("ticker", ""), "decision": rec.get("decision"),
                                  "target_weight": trace["risk"].get("target_weight")})
                traces[key] = trace
    tickers = sorted({t for row in weights_rows for t in row["weights"]} | {d["ticker"] for d in decisions if d["ticker"]})
    n_tickers = max(1, len(tickers) or len((config.get("data") or {}).get("tickers") or []) or 1)
    statistics = metrics.get("statistics")
    if not statistics:  # a run written before metrics.json carried them
        from env.stats import run_statistics

        statistics = json_safe(run_statistics(values, seed=int(config.get("seed", 0))))
    cost = metrics.get("cost") or json_safe(cost_metrics(records, n_tickers))
    plain = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    return json_safe({
        "kind": "run",
        "title": f"tradegraph run {run_dir.name}",
        "run_id": run_dir.name,
        "metrics": {"agent": plain, **baselines},
        "equity": {"dates": dates, "agent": values, "baselines": curves, "drawdown": _drawdown(values),
                   "baseline_drawdown": {k: _drawdown(v) for k, v in curves.items()}, "note": note},
        "weights": {"tickers": tickers, "rows": weights_rows},
        "decisions": decisions,
        "traces": traces,
        "moves": moves,
        "cost": cost,
        "statistics": statistics,
        "contamination": metrics.get("contamination"),
    })


def sweep_report_data(sweep_dir: Path) -> dict[str, Any]:
    """The sweep page: the tidy table, a summary per strategy and group with paired gaps to
    buy-and-hold, and (for an ablation sweep) each component's marginal effect."""
    from agents.sweep import RESULTS_CSV, ablation_effects, summarize

    sweep_dir = Path(sweep_dir)
    path = sweep_dir / RESULTS_CSV
    if not path.is_file():
        raise ConfigError(f"{sweep_dir} has no {RESULTS_CSV}; run `python run.py sweep SWEEP.yaml` first")
    table = pd.read_csv(path)
    rows = json.loads(table.to_json(orient="records"))
    return json_safe({
        "kind": "sweep",
        "title": f"tradegraph sweep {sweep_dir.name}",
        "columns": list(table.columns),
        "rows": rows,
        "summary": summarize(table),
        "ablation": ablation_effects(table),
    })


def render_report(data: dict[str, Any], out: Path) -> Path:
    """Write the page with ``data`` embedded; returns ``out``."""
    page = TEMPLATE.read_text(encoding="utf-8")
    if DATA_MARK not in page:
        raise ConfigError(f"{TEMPLATE} lost its data marker {DATA_MARK!r}")
    payload = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page.replace(DATA_MARK, payload), encoding="utf-8")
    return out

