"""Inspectable traces: one JSON line per agent step, written to ``<run_dir>/traces.jsonl``.

Every record has a deterministic ``key`` (day, node, ticker, sequence). A node re-run after a
crash writes the same keys again; readers keep the last record per key, so a resumed run's trace
reads exactly like an uninterrupted one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

TRACE_FILE = "traces.jsonl"


class TraceWriter:
    """Appends trace records; thread-safe (parallel analyst nodes share it)."""

    def __init__(self, run_dir: Path, run_id: str) -> None:
        self.path = Path(run_dir) / TRACE_FILE
        self.run_id = run_id
        self._lock = threading.Lock()

    def write(self, *, day: int, date: str, phase: str, node: str, ticker: str = "", seq: int = 0, **fields: Any) -> None:
        record = {
            "key": f"{day}:{node}:{ticker}:{seq}",
            "run_id": self.run_id,
            "day": day,
            "date": date,
            "phase": phase,
            "node": node,
            "ticker": ticker,
            "wall_time": time.time(),  # for profiling only; simulated time is `date`
            **fields,
        }
        line = json.dumps(record, default=_json_default, ensure_ascii=False)
        with self._lock:
            with self.path.open("a", encoding="utf-8") as fh:
                # flush reaches the OS, which keeps it through a SIGKILL; no fsync per line (it costs ms).
                fh.write(line + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def read_traces(run_dir: Path) -> list[dict[str, Any]]:
    """All records, last write per key wins, in first-appearance order. A torn last line is skipped."""
    path = Path(run_dir) / TRACE_FILE
    if not path.exists():
        return []
    latest: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write; its node re-ran and wrote it again
            latest[rec["key"]] = rec
    return list(latest.values())


def filter_traces(records: Iterable[dict[str, Any]], day: str | None = None, agent: str | None = None) -> Iterator[dict[str, Any]]:
    """Select by session (index or ISO date) and by node/agent name (substring)."""
    for rec in records:
        if day is not None and str(rec["day"]) != day and rec["date"] != day:
            continue
        if agent is not None and agent not in rec["node"]:
            continue
        yield rec


def format_trace(rec: dict[str, Any]) -> str:
    """A readable block for one record: header, decision, probabilities, memories, calls, prompt."""
    lines = [f"== day {rec['day']} ({rec['date']}, {rec['phase']}) · {rec['node']} · {rec['ticker'] or '-'}"]
    for key in ("decision", "action", "target_weight", "caps", "reason", "rationale", "lesson", "summary", "trend_call"):
        if key in rec and rec[key] not in (None, "", []):
            lines.append(f"  {key}: {rec[key]}")
    if rec.get("probs"):
        lines.append("  probs: " + ", ".join(f"{k}={v:.3f}" for k, v in rec["probs"].items()))
    for item in rec.get("items", []):
        lines.append(
            f"  - {item.get('item_id')}: relevance={item.get('relevance', 0):.2f} impact={item.get('impact')} "
            f"stored={item.get('stored')} | {item.get('reason', '')}"
        )
    for mem in rec.get("memories", []):
        lines.append(f"  memory {mem.get('id')} [{mem.get('layer')}] score={mem.get('score', 0):.3f}: {mem.get('text', '')[:100]}")
    for move in rec.get("moves", []):
        lines.append(f"  move: {move}")
    calls = rec.get("llm_calls", [])
    if calls:
        tokens = sum(int(c.get("tokens_in", 0)) + int(c.get("tokens_out", 0)) for c in calls)
        hits = sum(1 for c in calls if c.get("cache_hit"))
        fallbacks = [c for c in calls if c.get("fallback")]
        lines.append(f"  llm: {len(calls)} call(s), {tokens} tokens, {hits} cache hit(s), {len(fallbacks)} fallback(s)")
        for c in fallbacks:
            lines.append(f"    fallback: {c.get('fallback_reason')} raw={str(c.get('raw_output'))[:120]!r}")
    if "latency_s" in rec:
        lines.append(f"  latency: {rec['latency_s']:.3f}s")
    prompt = rec.get("prompt")
    if prompt:
        lines.append("  prompt (user):")
        lines.extend("    " + line for line in str(prompt).splitlines()[:40])
    return "\n".join(lines)
