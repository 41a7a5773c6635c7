"""reflect: FinCon-style reflection (lessons from matured rewards, episode-end belief updates) and
refits of the reward adapter on the examples whose labels have matured."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agents.analysts import judge_history
from agents.deps import Deps
from agents.journal import Account
from agents.llm.base import CallRecord, model_calls_of
from agents.memory_items import make_memory_item
from agents.nodes.common import trace
from agents.state import AgentName, MaturedPart, NodeName, RunState
from env.records import SourceType

LESSON_ROWS = 12  # matured reward parts shown per ticker in a reflection prompt
LESSON_EVIDENCE = 6  # memories the reflected decisions used, shown as evidence


def make_reflect_node(deps: Deps) -> Callable[[RunState], dict]:
    ep = deps.config.episode

    def node(state: RunState) -> dict:
        started = time.perf_counter()
        update: dict[str, Any] = {}
        since_start = state.day - state.first_day
        deps.adapter.ensure(state.adapter_version)
        if ep.reflection and since_start > 0 and since_start % ep.reflect_every_days == 0 and state.matured_buffer:
            for ticker, rows in _by_ticker(state.matured_buffer).items():
                lesson, record, prompt = write_lesson(deps, state, ticker, rows)
                trace(deps, state, NodeName.REFLECT, ticker=ticker, lesson=lesson, prompt=prompt,
                      llm_calls=[record.model_dump(mode="json")], model_calls=model_calls_of([record]),
                      latency_s=time.perf_counter() - started)
            update["matured_buffer"] = []
        if ep.reflection and state.day == state.test_start and "train" not in state.beliefs:
            # End of the training episode: summarise what worked, keep it as a reflection memory.
            text, record, prompt = belief_update(deps, state, Account.TRAIN, state.first_day, state.test_start - 1)
            update["beliefs"] = {**state.beliefs, "train": text}
            view = deps.data.view(state.day)
            for ticker in view.tickers:
                item = make_memory_item(
                    text=f"Beliefs after training: {text}", ticker=ticker, source_type=SourceType.REFLECTION.value,
                    source_id=f"beliefs:train:{ticker}", url="", event_date=view.date, public_at=view.decision_time,
                    reason="episode-end belief update", relevance=1.0, impact="neutral", impact_score=0.0,
                )
                deps.memory.add([item], as_of=view.decision_time)
            trace(deps, state, NodeName.REFLECT, ticker="", seq=2, summary=text, prompt=prompt, llm_calls=[record.model_dump(mode="json")])
        refit_due = since_start % ep.refit_every_days == 0  # includes the first decision (history bootstrap)
        if deps.config.learning.enabled and (refit_due or state.day == state.test_start) and state.adapter_version != state.day:
            horizon = max(ep.adapter_label_horizons_days)
            history = {}
            if state.day == state.first_day and ep.bootstrap_from_history and ep.bootstrap_judge_sessions:
                history = judge_history(deps, state, ep.bootstrap_judge_sessions)
            usable = [e.model_dump() for e in deps.journal.examples(state.day) if e.index + horizon <= state.day]
            if usable:
                scores = deps.journal.judgement_scores([e["item_id"] for e in usable], state.day)
                report, judged, window = deps.adapter.fit(
                    usable, version=state.day, scores=scores, window=lambda: window_rows(deps, state, usable),
                )
                update["adapter_version"] = state.day
                trace(deps, state, NodeName.REFLECT, ticker="", seq=1, adapter_fit=report.model_dump(mode="json"),
                      calibrator_fit=judged, window_fit=window, **history,
                      latency_s=time.perf_counter() - started)
        return update

    node.__name__ = NodeName.REFLECT.value
    return node


def window_rows(deps: Deps, state: RunState, examples: list[dict[str, Any]]) -> tuple[list[list[tuple[int, int]]], list[float]] | None:
    """The news window model's training rows, point in time (``agents.learning.window``).

    One row per ticker and past decision session ``t`` whose label has matured by today
    (``open[t + 2]`` is known) and whose news has all been released as examples: the (position in
    ``examples``, age ``t - s`` in sessions) of the ticker's items usable at sessions ``s`` within
    ``learning.window_sessions`` of ``t``, and the return of the position that decision set,
    ``open[t + 2] / open[t + 1] - 1``."""
    sessions = deps.config.learning.window_sessions
    view = deps.data.view(state.day)
    ticker_of = {n.id: n.ticker for n in view.news()}
    by_ticker: dict[str, list[tuple[int, int]]] = {}
    for k, e in enumerate(examples):
        ticker = ticker_of.get(e.get("item_id", ""))
        if ticker is not None:
            by_ticker.setdefault(ticker, []).append((int(e["index"]), k))
    if not by_ticker:
        return None
    first = min(s for items in by_ticker.values() for s, _ in items)
    last = min(max(s for items in by_ticker.values() for s, _ in items), state.day - 2)
    opens = {ticker: view.series(ticker, "open") for ticker in view.tickers}
    members: list[list[tuple[int, int]]] = []
    returns: list[float] = []
    for day in range(first, last + 1):
        for ticker in view.tickers:
            members.append([(k, day - s) for s, k in by_ticker.get(ticker, []) if 0 <= day - s < sessions])
            returns.append(float(opens[ticker][day + 2] / opens[ticker][day + 1] - 1.0))
    return (members, returns) if members else None


def _by_ticker(rows: list[MaturedPart]) -> dict[str, list[MaturedPart]]:
    out: dict[str, list[MaturedPart]] = {}
    for row in rows:
        out.setdefault(row.ticker, []).append(row)
    return out


def write_lesson(deps: Deps, state: RunState, ticker: str, rows: list[MaturedPart]) -> tuple[str, CallRecord, str]:
    """One lesson on a ticker's matured rewards, citing the memories those decisions relied on.
    Stored in the reflection layer and the journal; returns (lesson, call record, prompt)."""
    view = deps.data.view(state.day)
    agent = AgentName.REFLECTION
    outcomes = "\n".join(
        f"- {deps.data.dates[r.decision_index]}: {r.action.value}, horizon {r.horizon}d, "
        f"momentum {r.momentum_part:+.2%}, reward part {r.reward_part:+.4f}"
        for r in rows[-LESSON_ROWS:]
    )
    # The decisions' memory ids come from the journal, which keeps them after the reward node
    # dropped the decisions whose horizons all matured (those are the ones most worth citing).
    decisions = deps.journal.decisions([r.decision_id for r in rows])
    mem_ids = list(dict.fromkeys(m for r in rows if r.decision_id in decisions for m in decisions[r.decision_id].memory_ids))
    evidence = "\n".join(f"- {m.text[:200]}" for m in deps.memory.get(mem_ids[:LESSON_EVIDENCE])) or "(none)"
    period = f"{deps.data.dates[rows[0].decision_index]} to {view.date}"
    rendered = deps.prompts.render(agent.value, ticker=ticker, period=period, outcomes=outcomes, evidence=evidence)
    res = deps.llm(agent).text(rendered.chat(), agent=agent.value, max_tokens=deps.config.episode.lesson_max_tokens)
    total = sum(r.reward_part for r in rows)
    hits = sum(1 for r in rows if r.reward_part > 0)
    lesson = (
        f"{ticker} {period}: {hits}/{len(rows)} matured reward parts positive, total {total:+.4f}. "
        + res.text.strip().replace("\n", " ")[:400]
    )
    item = make_memory_item(
        text=lesson, ticker=ticker, source_type=SourceType.REFLECTION.value, source_id=f"lesson:{state.day}:{ticker}",
        url="", event_date=view.date, public_at=view.decision_time, reason="written by reflection",
        relevance=1.0, impact="neutral", impact_score=0.0,
    )
    deps.memory.add([item], as_of=view.decision_time)
    deps.journal.add_lesson(state.day, ticker, lesson)
    return lesson, res.record, rendered.user


def belief_update(deps: Deps, state: RunState, account: Account, first: int, last: int) -> tuple[str, CallRecord, str]:
    """Episode-end belief update: what worked over sessions [first, last] of ``account``.
    Returns (beliefs, call record, prompt)."""
    ledger = deps.journal.ledger(deps.data, account)
    eq = ledger.equity["equity"]
    start, end = (float(eq.iloc[0]), float(eq.iloc[-1])) if len(eq) else (0.0, 0.0)
    fills = len(ledger.fills)
    lessons = deps.journal.lessons(state.day)
    phase = "training" if account == Account.TRAIN else "test"
    stats = (
        f"{phase} period equity {start:,.0f} -> {end:,.0f} ({(end / start - 1) if start else 0:+.2%}), {fills} fills; "
        f"lessons written so far: {len(lessons)}"
    )
    rendered = deps.prompts.render(
        "belief_update", period=f"the {phase} period {deps.data.dates[first]} to {deps.data.dates[last]}",
        stats=stats, lessons="\n".join(f"- {x}" for x in lessons[-6:]) or "(none)",
    )
    agent = AgentName.REFLECTION
    res = deps.llm(agent).text(rendered.chat(), agent=agent.value, max_tokens=deps.config.episode.lesson_max_tokens)
    return stats + " " + res.text.strip().replace("\n", " ")[:600], res.record, rendered.user
