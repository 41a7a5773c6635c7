"""The session's bookkeeping nodes: open (fills, phase switch, memory upkeep), reward, reflect,
risk, execute, close. Every side effect is idempotent, because after a crash LangGraph re-runs the
interrupted node from its start: the broker and reward tracker live in the state (rebuilt from it,
never mutated in place), memory writes are upserts by deterministic id, adapter versions are files
named by session, and traces are keyed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from agents.deps import Deps
from agents.llm.base import model_calls_of
from agents.memory_items import make_memory_item
from agents.risk import SizingLimits, enforce_gross_exposure, size_position
from agents.state import Example, NodeName, PendingDecision, Phase, RunState, SizedOrder
from env.broker import Broker, TargetWeightOrder
from env.records import SourceType
from rewards.config import RewardConfig
from rewards.momentum import DecisionRecord, RewardTracker


def load_broker(deps: Deps, state: dict[str, Any]) -> Broker:
    return Broker.from_state_dict(deps.data, state)


def _trace(deps: Deps, state: RunState, node: NodeName, ticker: str = "", **fields: Any) -> None:
    deps.tracer.write(
        day=state.day, date=str(deps.data.dates[state.day]), phase=state.phase.value, node=node.value, ticker=ticker, **fields
    )


def make_open_session(deps: Deps) -> Callable[[RunState], dict]:
    """Fill yesterday's orders at today's open, mark to market at the close, switch phase, age memory."""

    def node(state: RunState) -> dict:
        started = time.perf_counter()
        update: dict[str, Any] = {"reports": None, "decisions": {}, "orders": {}}
        broker = load_broker(deps, state.broker)
        broker.step(state.day)
        phase = state.phase
        if state.phase == Phase.TRAIN and state.day >= state.test_start:
            # Out-of-sample evaluation starts with a fresh account; the training ledger is kept.
            update["train_broker"] = broker.state_dict()
            broker = Broker(deps.data, deps.config.broker)
            broker.step(state.day)
            phase = Phase.TEST
            update["phase"] = phase
        update["broker"] = broker.state_dict()
        moves = deps.memory.step_day(deps.data.closes_utc[state.day])
        deps.tracer.write(
            day=state.day, date=str(deps.data.dates[state.day]), phase=phase.value, node=NodeName.OPEN_SESSION.value,
            equity=broker.portfolio().equity, weights=broker.portfolio().weights,
            moves=[m.model_dump(mode="json") for m in moves], latency_s=time.perf_counter() - started,
        )
        return update

    node.__name__ = NodeName.OPEN_SESSION.value
    return node


class FeedbackJournal:
    """Keys of memory-feedback events already applied, appended and fsynced one per line.

    Feedback changes importance additively, so applying it twice is not idempotent; a reward node
    re-run after a crash skips the events this journal already holds.
    """

    def __init__(self, path) -> None:
        self.path = path
        self.keys: set[str] = set()
        if path.exists():
            self.keys = {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}

    def apply_once(self, key: str, action: Callable[[], list]) -> list:
        if key in self.keys:
            return []
        out = action()
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(key + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.keys.add(key)
        return out


def make_reward_node(deps: Deps) -> Callable[[RunState], dict]:
    """Release the reward parts maturing today; feed them back to the memories the decisions used."""
    ep = deps.config.episode
    label_cfg = RewardConfig(horizons_days=ep.adapter_label_horizons_days, lam=0.0, normalize=True)
    journal = FeedbackJournal(deps.run_dir / "feedback_journal.txt")

    def node(state: RunState) -> dict:
        started = time.perf_counter()
        view = deps.data.view(state.day)
        tracker = RewardTracker.from_state_dict(deps.config.rewards, state.rewards) if state.rewards else RewardTracker(deps.config.rewards)
        closes = {t: view.close(t) for t in view.tickers}
        matured = tracker.release(state.day, closes)
        pending = dict(state.pending)
        buffer = list(state.matured_buffer)
        examples = list(state.examples)
        moves = []
        for comp in matured:
            dec = pending.get(comp.decision_id)
            if dec is None:
                continue
            if dec.memory_ids:
                moves += journal.apply_once(
                    f"{comp.decision_id}:{comp.horizon}",
                    lambda dec=dec, comp=comp: deps.memory.feedback(dec.memory_ids, comp.reward_part, as_of=view.decision_time),
                )
            buffer.append(
                {
                    "decision_id": comp.decision_id, "ticker": comp.ticker, "decision_index": comp.decision_index,
                    "horizon": comp.horizon, "reward_part": comp.reward_part, "partial_reward": comp.partial_reward,
                    "momentum_part": comp.momentum_part, "action": dec.action.value, "complete": comp.complete,
                }
            )
            if comp.complete:
                pending.pop(comp.decision_id, None)
        # The adapter's labels: the short-horizon momentum reward of a unit long position after each
        # session's news, released by its own tracker as it matures.
        labels = RewardTracker.from_state_dict(label_cfg, state.label_rewards) if state.label_rewards else RewardTracker(label_cfg)
        label_texts = dict(state.label_texts)
        if ep.bootstrap_from_history and state.day == state.first_day and not examples:
            examples = history_examples(deps, view, label_cfg.horizons_days)
        for comp in labels.release(state.day, closes):
            if comp.complete:
                texts = label_texts.pop(comp.decision_id, [])
                examples += [Example(text=t, outcome=comp.partial_reward, index=comp.decision_index) for t in texts]
        chars = ep.example_text_chars
        for ticker in view.tickers:
            texts = [f"{n.headline}. {n.body[:chars]}" for n in view.news(ticker, since=state.prev_day)]
            if texts:
                key = f"{ticker}:{state.day}"
                labels.record(DecisionRecord(key, ticker, state.day, closes[ticker], direction=1.0, quantity=0.0))
                label_texts[key] = texts
        _trace(
            deps, state, NodeName.REWARD,
            matured=[c.__dict__ for c in matured], moves=[m.model_dump(mode="json") for m in moves],
            latency_s=time.perf_counter() - started,
        )
        return {
            "rewards": tracker.state_dict(), "pending": pending, "matured_buffer": buffer, "examples": examples,
            "label_rewards": labels.state_dict(), "label_texts": label_texts,
        }

    node.__name__ = NodeName.REWARD.value
    return node


def make_reflect_node(deps: Deps) -> Callable[[RunState], dict]:
    """FinCon-style reflection: lessons from matured rewards, and refits of the reward adapter."""
    ep = deps.config.episode
    agent = "reflection"

    def node(state: RunState) -> dict:
        started = time.perf_counter()
        view = deps.data.view(state.day)
        update: dict[str, Any] = {}
        since_start = state.day - state.first_day
        deps.adapter.ensure(state.adapter_version)
        lessons = list(state.lessons)
        if since_start > 0 and since_start % ep.reflect_every_days == 0 and state.matured_buffer:
            by_ticker: dict[str, list[dict]] = {}
            for b in state.matured_buffer:
                by_ticker.setdefault(b["ticker"], []).append(b)
            for ticker, rows in by_ticker.items():
                outcomes = "\n".join(
                    f"- {deps.data.dates[r['decision_index']]}: {r['action']}, horizon {r['horizon']}d, "
                    f"momentum {r['momentum_part']:+.2%}, reward part {r['reward_part']:+.4f}"
                    for r in rows[-12:]
                )
                mem_ids = [m for r in rows for m in (state.pending.get(r["decision_id"]).memory_ids if r["decision_id"] in state.pending else [])]
                evidence = "\n".join(f"- {m.text[:200]}" for m in deps.memory.get(list(dict.fromkeys(mem_ids))[:6])) or "(none)"
                period = f"{deps.data.dates[rows[0]['decision_index']]} to {view.date}"
                rendered = deps.prompts.render(agent, ticker=ticker, period=period, outcomes=outcomes, evidence=evidence)
                messages = rendered.chat()
                res = deps.llm(agent).text(messages, agent=agent, max_tokens=deps.config.episode.lesson_max_tokens)
                total = sum(r["reward_part"] for r in rows)
                hits = sum(1 for r in rows if r["reward_part"] > 0)
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
                lessons = (lessons + [lesson])[-20:]
                _trace(deps, state, NodeName.REFLECT, ticker=ticker, lesson=lesson, prompt=rendered.user,
                       llm_calls=[res.record.model_dump(mode="json")], model_calls=model_calls_of([res.record]),
                       latency_s=time.perf_counter() - started)
            update["matured_buffer"] = []
            update["lessons"] = lessons
        if state.day == state.test_start and state.train_broker and "train" not in state.beliefs:
            # End of the training episode: summarise what worked, keep it as a reflection memory.
            text, record, prompt = belief_update(deps, state, "training", state.train_broker, state.first_day, state.test_start - 1)
            update["beliefs"] = {**state.beliefs, "train": text}
            for ticker in view.tickers:
                item = make_memory_item(
                    text=f"Beliefs after training: {text}", ticker=ticker, source_type=SourceType.REFLECTION.value,
                    source_id=f"beliefs:train:{ticker}", url="", event_date=view.date, public_at=view.decision_time,
                    reason="episode-end belief update", relevance=1.0, impact="neutral", impact_score=0.0,
                )
                deps.memory.add([item], as_of=view.decision_time)
            _trace(deps, state, NodeName.REFLECT, ticker="", seq=2, summary=text, prompt=prompt, llm_calls=[record.model_dump(mode="json")])
        refit_due = since_start % ep.refit_every_days == 0  # includes the first decision (history bootstrap)
        if deps.config.learning.enabled and (refit_due or state.day == state.test_start) and state.examples:
            usable = [e.model_dump() for e in state.examples if e.index + max(ep.adapter_label_horizons_days) <= state.day]
            if usable and state.adapter_version != state.day:
                report = deps.adapter.fit(usable, version=state.day)
                update["adapter_version"] = state.day
                _trace(deps, state, NodeName.REFLECT, ticker="", seq=1, adapter_fit=report.model_dump(mode="json"),
                       latency_s=time.perf_counter() - started)
        return update

    node.__name__ = NodeName.REFLECT.value
    return node


def make_risk_agent(deps: Deps) -> Callable[[RunState], dict]:
    """Scaled Kelly under a CVaR budget, clipped by hard limits. No model output reaches the size
    except through the direction probability."""
    risk, broker_cfg = deps.config.risk, deps.config.broker
    limits = SizingLimits(
        max_position_fraction=min(risk.max_position_fraction, broker_cfg.max_position_fraction),
        max_daily_turnover=min(risk.max_daily_turnover, broker_cfg.max_daily_turnover or float("inf")),
        max_gross_exposure=broker_cfg.max_gross_exposure,
        allow_short=broker_cfg.allow_short,
        min_trade_weight=risk.min_trade_weight,
    )

    def node(state: RunState) -> dict:
        view = deps.data.view(state.day)
        weights = state.broker.get("weights", {})
        sized: dict[str, SizedOrder] = {}
        for ticker, dec in state.decisions.items():
            closes = view.series(ticker, "close", lookback=risk.payoff_window_days + 1)
            returns = np.diff(closes) / closes[:-1]
            current = float(weights.get(ticker, 0.0))
            res = size_position(
                action=dec.action.value, p_up=dec.p_up, current_weight=current, returns=returns,
                kelly_scale=risk.kelly_scale, cvar_alpha=risk.cvar_alpha, cvar_budget=risk.cvar_budget, limits=limits,
                neutral_weight=risk.neutral_weight,
            )
            sized[ticker] = SizedOrder(
                ticker=ticker, action=dec.action, prev_weight=current, target_weight=res.target_weight,
                kelly_fraction=res.kelly_fraction, payoff_ratio=res.payoff, cvar=res.cvar, p_win=res.p_win, caps=res.caps,
            )
        targets, scaled = enforce_gross_exposure(
            {t: s.target_weight for t, s in sized.items()}, {t: float(weights.get(t, 0.0)) for t in sized}, limits.max_gross_exposure
        )
        for t, w in targets.items():
            if scaled and w != sized[t].target_weight:
                sized[t] = sized[t].model_copy(update={"target_weight": w, "caps": sized[t].caps + ["max_gross_exposure"]})
            _trace(deps, state, NodeName.RISK, ticker=t, action=sized[t].action.value, target_weight=sized[t].target_weight,
                   caps=sized[t].caps, kelly_fraction=sized[t].kelly_fraction, payoff_ratio=sized[t].payoff_ratio,
                   cvar=sized[t].cvar, p_win=sized[t].p_win, prev_weight=sized[t].prev_weight)
        return {"orders": sized}

    node.__name__ = NodeName.RISK.value
    return node


def make_execute_node(deps: Deps) -> Callable[[RunState], dict]:
    """Send target-weight orders to the broker (filled at the next open) and register the decisions
    with the reward tracker."""

    def node(state: RunState) -> dict:
        view = deps.data.view(state.day)
        broker = load_broker(deps, state.broker)
        orders = [
            TargetWeightOrder(t, s.target_weight)
            for t, s in sorted(state.orders.items())
            if abs(s.target_weight - s.prev_weight) > 1e-12
        ]
        ids = broker.submit(orders, state.day) if orders else []
        tracker = RewardTracker.from_state_dict(deps.config.rewards, state.rewards) if state.rewards else RewardTracker(deps.config.rewards)
        pending = dict(state.pending)
        for ticker, s in state.orders.items():
            dec_id = f"{ticker}:{state.day}"
            tracker.record(
                DecisionRecord(
                    decision_id=dec_id, ticker=ticker, index=state.day, price=view.close(ticker),
                    direction=float(np.sign(s.target_weight)), quantity=abs(s.target_weight), cvar=s.cvar,
                )
            )
            pending[dec_id] = PendingDecision(
                ticker=ticker, index=state.day, action=s.action,
                memory_ids=state.decisions[ticker].memory_ids if ticker in state.decisions else [],
            )
        _trace(deps, state, NodeName.EXECUTE, order_ids=ids, orders=[o._asdict() for o in orders])
        return {"broker": broker.state_dict(), "rewards": tracker.state_dict(), "pending": pending}

    node.__name__ = NodeName.EXECUTE.value
    return node


def history_examples(deps: Deps, view, horizons: tuple[int, ...]) -> list[Example]:
    """Examples from news public before the first decision whose label horizons matured by then.

    Each item counts from the first session whose close is at or after its publication (when it
    became usable); its label is sum_h (close[s+h] - close[s]) / close[s]. Only prices up to today
    are read (through the view), so this is point-in-time safe.
    """
    import bisect

    chars = deps.config.episode.example_text_chars
    closes_utc = deps.data.closes_utc[: view.index + 1]
    out: list[Example] = []
    for ticker in view.tickers:
        closes = view.series(ticker, "close")
        for n in view.news(ticker):
            s = bisect.bisect_left(closes_utc, n.public_at)
            if s + max(horizons) > view.index:
                continue
            outcome = sum(closes[s + h] - closes[s] for h in horizons) / closes[s]
            out.append(Example(text=f"{n.headline}. {n.body[:chars]}", outcome=float(outcome), index=s))
    out.sort(key=lambda e: e.index)
    return out


def make_close_session(deps: Deps) -> Callable[[RunState], dict]:
    def node(state: RunState) -> dict:
        counters = dict(state.counters)
        counters["sessions"] = counters.get("sessions", 0) + 1
        return {
            "prev_day": state.day,
            "day": state.day + 1,
            "counters": counters,
            "accounting": deps.accounting.state().model_dump(mode="json"),
        }

    node.__name__ = NodeName.CLOSE_SESSION.value
    return node


def route_after_close(state: RunState) -> str:
    """Next session, or finish at the end of the test period."""
    return NodeName.OPEN_SESSION.value if state.day <= state.end_day else NodeName.FINISH.value


def belief_update(deps: Deps, state: RunState, phase: str, broker_state: dict[str, Any], first: int, last: int) -> tuple[str, Any, str]:
    """Episode-end belief update: what worked over sessions [first, last]. Returns (beliefs, call record, prompt)."""
    broker = load_broker(deps, broker_state)
    eq = broker.ledger.equity["equity"]
    start, end = (float(eq.iloc[0]), float(eq.iloc[-1])) if len(eq) else (0.0, 0.0)
    fills = len(broker.ledger.fills)
    stats = (
        f"{phase} period equity {start:,.0f} -> {end:,.0f} ({(end / start - 1) if start else 0:+.2%}), {fills} fills; "
        f"lessons written so far: {len(state.lessons)}"
    )
    rendered = deps.prompts.render(
        "belief_update", period=f"the {phase} period {deps.data.dates[first]} to {deps.data.dates[last]}",
        stats=stats, lessons="\n".join(f"- {x}" for x in state.lessons[-6:]) or "(none)",
    )
    messages = rendered.chat()
    res = deps.llm("reflection").text(messages, agent="reflection", max_tokens=deps.config.episode.lesson_max_tokens)
    return stats + " " + res.text.strip().replace("\n", " ")[:600], res.record, rendered.user


def make_finish_node(deps: Deps) -> Callable[[RunState], dict]:
    """Episode-end belief update for the test period, and pending orders recorded as unfilled."""

    def node(state: RunState) -> dict:
        broker = load_broker(deps, state.broker)
        broker.expire_pending("end of the test period")
        text, record, prompt = belief_update(deps, state, "test", broker.state_dict(), state.test_start, state.end_day)
        beliefs = {**state.beliefs, "test": text}
        deps.tracer.write(day=state.end_day, date=str(deps.data.dates[state.end_day]), phase="done", node=NodeName.FINISH.value,
                          summary=text, prompt=prompt, llm_calls=[record.model_dump(mode="json")])
        return {"phase": Phase.DONE, "broker": broker.state_dict(), "beliefs": beliefs}

    node.__name__ = NodeName.FINISH.value
    return node
