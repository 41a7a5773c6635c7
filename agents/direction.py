"""Direction agent: buy / sell / hold for each ticker, with a probability for each action.

Evidence combined in log space (weights in ``DirectionConfig``):
- the LLM's calibrated choice over buy/sell/hold, given retrieved memories, the technical view,
  the current position and reflection lessons (the prompt in ``prompts/direction.md``);
- a news signal from every news item of the ticker in memory from the last few sessions: each
  item's log-odds deviation from the reward-trained heads' base rates (the reader's on its text
  plus the judgement calibrator's on the analyst's call; before they are fitted, the analyst's
  impact score, damped), summed with relevance and a calendar half-life. Once the news window
  model (``agents.learning.window``) is trained, it replaces the reader's per-item sum: it reads
  the summed text vectors of the items of its learned window (its deviation exactly 0 while its own
  out-of-fold gate is shut), and the calibrator's deviations on those items add to it (with
  ``learning.window_judged`` the window model reads the analyst's impact scores as one more input
  instead, so one fit weighs the two on the same target). Always
  around 0.5 (no evidence = no edge; how often prices rise is the risk agent's business);
- the market analyst's trend probabilities.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import time
from collections.abc import Callable, Sequence

from agents.deps import Deps
from agents.llm.base import model_calls_of
from agents.state import Action, AgentName, AnalystKind, DirectionDecision, NodeName, RunState
from env.broker import Broker
from env.records import SourceType
from memory.base import Layer

ACTIONS = (Action.BUY.value, Action.SELL.value, Action.HOLD.value)
TEXT_SOURCES = frozenset({SourceType.NEWS, SourceType.FILING_10K, SourceType.FILING_10Q, SourceType.FILING_8K, SourceType.MACRO})


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def evidence_signal(evidence_logits: Sequence[float], weights: Sequence[float], prior: float) -> float:
    """P(up) from independent pieces of evidence: sigmoid(logit(prior) + sum_j w_j * e_j), where e_j is
    item j's log-odds deviation from the reference it was read against (naive Bayes)."""
    return _sigmoid(_logit(prior) + sum(w * e for e, w in zip(evidence_logits, weights, strict=True)))


def running_mean(stats: dict[str, float] | None, values: dict[str, float]) -> dict[str, float]:
    """Update a running mean kept as {"n": count, key: mean, ...}."""
    stats = dict(stats or {"n": 0.0})
    n = stats["n"] + 1.0
    for k, v in values.items():
        stats[k] = stats.get(k, 0.0) + (v - stats.get(k, 0.0)) / n
    stats["n"] = n
    return stats


def centred(values: dict[str, float], stats: dict[str, float] | None, min_n: float) -> dict[str, float]:
    """Batch calibration (Zhou et al. 2023): subtract what the model says on average, so only its
    reaction to *this* input counts. Until ``min_n`` past answers exist the values count as zero."""
    if not stats or stats.get("n", 0.0) < min_n:
        return dict.fromkeys(values, 0.0)
    return {k: v - stats.get(k, 0.0) for k, v in values.items()}


def combine(
    llm_logits: dict[str, float], p_up: float, tilt: float, *, llm_weight: float, signal_weight: float,
    technical_weight: float, hold_prior: float,
) -> dict[str, float]:
    """Product of experts over buy/sell/hold, normalised.

    ``llm_logits``: the LLM's (centred) log-probabilities per action; ``p_up``: the news signal;
    ``tilt``: the (centred) trend call, P(bullish) - P(bearish).
    """
    sig = {"buy": p_up * (1 - hold_prior), "sell": (1 - p_up) * (1 - hold_prior), "hold": hold_prior}
    logs = {}
    for a in ACTIONS:
        value = llm_weight * llm_logits.get(a, 0.0) + signal_weight * math.log(max(sig[a], 1e-9))
        value += technical_weight * (tilt if a == "buy" else -tilt if a == "sell" else 0.0)
        logs[a] = value
    top = max(logs.values())
    exp = {a: math.exp(v - top) for a, v in logs.items()}
    total = sum(exp.values())
    return {a: exp[a] / total for a in ACTIONS}


def make_direction_agent(deps: Deps) -> Callable[[RunState], dict]:
    cfg = deps.config.direction
    agent = AgentName.DIRECTION

    def node(state: RunState) -> dict:
        view = deps.data.view(state.day)
        deps.adapter.ensure(state.adapter_version)
        broker_weights = Broker.weights_in(state.broker)
        decisions: dict[str, DirectionDecision] = {}
        calibration = dict(state.calibration)
        for ticker in view.tickers:
            started = time.perf_counter()
            scored = deps.memory.query(
                f"{ticker}: latest news, filings, macro events and risks for the share price",
                ticker=ticker,
                as_of=view.decision_time,
                k_per_layer=cfg.memories_per_layer,
            )
            memories = [s for s in scored if s.item.layer != Layer.REFLECTION]
            lessons = [s for s in scored if s.item.layer == Layer.REFLECTION]
            evidence = [(s.item, s.score) for s in memories]
            # The news signal reads every news item of this ticker that memory holds from the last
            # news_window_days (today's included: the analysts stored them before this node), each
            # item's evidence its log-odds deviation from the base rates of the two reward-trained
            # heads: the reader (its text) and the judgement calibrator (the analyst's impact call).
            window_sessions = deps.config.learning.window_sessions
            since = view.decision_time - dt.timedelta(days=cfg.news_window_days)
            if window_sessions:  # the news window model reads the last window_sessions sessions
                since = min(since, deps.data.closes_utc[max(0, state.day - window_sessions)])
            recent = deps.memory.recent(ticker=ticker, since=since, as_of=view.decision_time, source_types=[SourceType.NEWS])
            seen = {item.id for item, _ in evidence}
            evidence += [(item, 0.0) for item in recent if item.id not in seen]
            adapter_p = deps.adapter.predict([item.text for item in recent])
            judged = deps.adapter.judged_logits([item.impact_score for item in recent])
            base = deps.adapter.base_rate()  # what the reader says without text: deviations are read against it
            evidence_logits, weights, ages = [], [], []
            for item, p_ad, j_dev in zip(recent, adapter_p, judged, strict=True):
                age_days = max(0.0, (view.decision_time - item.public_at).total_seconds() / 86400.0)
                weight = (item.relevance_prob or 0.0) * 0.5 ** (age_days / cfg.news_half_life_days)
                if age_days > cfg.news_window_days:
                    weight = 0.0  # read only by the window model
                if p_ad is not None:  # the reward-trained heads (each exactly 0 while it shows no skill)
                    deviation = _logit(p_ad) - _logit(base) + j_dev
                else:  # before the heads are trained: the analyst's own impact call, damped
                    deviation = cfg.analyst_evidence_logit * float(item.impact_score or 0.0)
                evidence_logits.append(deviation)
                weights.append(weight)
                ages.append(state.day - bisect.bisect_left(deps.data.closes_utc, item.public_at))
            text_items = [(item, 0.0) for item in recent]
            # Evidence only, around 0.5: how often prices rise is the risk agent's business (it pairs that
            # with the payoff ratio of the same window); here a base rate below 1/2 would mean "sell" every day.
            # With a trained news window model, it reads the items of its window (text vectors summed)
            # in place of the reader's per-item sum; the calibrator's evidence on those items adds to it.
            window_dev, inside = None, []
            if window_sessions and deps.adapter.window_ready():
                inside = [k for k, age in enumerate(ages) if 0 <= age < deps.adapter.window_sessions()]
                if deps.adapter.window_judged():  # one stacked fit weighs the text and the analyst's calls
                    window_dev = deps.adapter.window_deviation(
                        [ages[k] for k in inside], [recent[k].text for k in inside], [recent[k].impact_score for k in inside])
                else:
                    window_dev = deps.adapter.window_deviation([ages[k] for k in inside], [recent[k].text for k in inside])
                    window_dev += sum(judged[k] for k in inside)
            p_up = _sigmoid(window_dev) if window_dev is not None else evidence_signal(evidence_logits, weights, 0.5)
            trend = state.report(AnalystKind.MARKET, ticker)
            trend_probs = trend.trend_probs if trend else None
            weight_now = float(broker_weights.get(ticker, 0.0))
            position = f"{weight_now:+.1%} of equity ({'long' if weight_now > 0 else 'short' if weight_now < 0 else 'flat'})"
            shown = sorted(evidence, key=lambda e: -e[1])[: cfg.memories_in_prompt]
            mem_block = "\n".join(
                f"- [{item.layer.value} | {item.public_at:%Y-%m-%d} | {item.impact_label or '?'}] "
                f"{item.text.splitlines()[0][: cfg.memory_chars_in_prompt]}"
                for item, score in shown
            ) or "(no memories yet)"
            lesson_block = "\n".join(f"- {s.item.text[: cfg.memory_chars_in_prompt]}" for s in lessons[:1]) or "(no lessons yet)"
            technical = (trend.summary if trend else "(no technical view)") + (
                f"\ntrend call: {', '.join(f'{k} {v:.2f}' for k, v in trend_probs.items())}" if trend_probs else ""
            )
            rendered = deps.prompts.render(
                agent.value, ticker=ticker, date=str(view.date), position=position, technical=technical,
                memories=mem_block, lessons=lesson_block,
            )
            key_llm, key_trend = f"direction:{ticker}", f"trend:{ticker}"
            if cfg.llm_weight > 0:
                res = deps.llm(agent).choose(rendered.chat(), ACTIONS, agent=agent.value, fallback=Action.HOLD.value)
                llm_probs, records, model_calls = res.probs, [res.record.model_dump(mode="json")], model_calls_of([res.record])
                llm_logs = {a: math.log(max(llm_probs.get(a, 1e-9), 1e-9)) for a in ACTIONS}
                llm_centred = centred(llm_logs, calibration.get(key_llm), cfg.calibration_min_n)
                calibration[key_llm] = running_mean(calibration.get(key_llm), llm_logs)
            else:  # llm_weight 0: the model's answer could not move the decision, so it is not asked
                llm_probs, records, model_calls, llm_centred = {}, [], 0, dict.fromkeys(ACTIONS, 0.0)
            raw_tilt = {"tilt": (trend_probs.get("bullish", 0.0) - trend_probs.get("bearish", 0.0)) if trend_probs else 0.0}
            tilt = centred(raw_tilt, calibration.get(key_trend), cfg.calibration_min_n)["tilt"]
            calibration[key_trend] = running_mean(calibration.get(key_trend), raw_tilt)
            probs = combine(
                llm_centred, p_up, tilt, llm_weight=cfg.llm_weight, signal_weight=cfg.adapter_weight,
                technical_weight=cfg.technical_weight, hold_prior=cfg.hold_prior,
            )
            action = Action(max(ACTIONS, key=lambda a: probs[a]))
            top = max(text_items, key=lambda t: t[1], default=None)
            rationale = (
                f"{action.value} ({probs[action.value]:.2f}): news signal P(up)={p_up:.2f} from {len(weights)} "
                f"memories (adapter base rate {base:.2f}); "
                + (f"LLM buy/sell/hold {llm_probs.get('buy', 0):.2f}/{llm_probs.get('sell', 0):.2f}/{llm_probs.get('hold', 0):.2f}"
                   if llm_probs else "LLM not asked (direction.llm_weight 0)")
                + (f"; trend bullish {trend_probs.get('bullish', 0):.2f} vs bearish {trend_probs.get('bearish', 0):.2f}" if trend_probs else "")
                + (f"; top memory: {top[0].text.splitlines()[0][:90]!r}" if top else "")
            )
            decisions[ticker] = DirectionDecision(
                ticker=ticker,
                action=action,
                probs=probs,
                p_up=p_up if cfg.size_on == "news" else probs["buy"] / max(1e-12, probs["buy"] + probs["sell"]),
                news_p_up=p_up,
                memory_ids=[item.id for item, _ in evidence],
            )
            components = {
                "llm": llm_probs or None, "llm_centred": llm_centred, "news_p_up": p_up, "trend": trend_probs,
                "trend_tilt_centred": tilt, "base_rate": base, "news_items": len(recent),
                "window_logit": window_dev, "window_items": len(inside) if window_dev is not None else None,
                "news_evidence": [
                    {"id": item.id, "text": item.text.splitlines()[0][:100], "weight": w, "logit": e}
                    for item, w, e in zip(recent, weights, evidence_logits, strict=True)
                ],
            }
            deps.tracer.write(
                day=state.day,
                date=str(view.date),
                phase=state.phase.value,
                node=NodeName.DIRECTION.value,
                ticker=ticker,
                decision=action.value,
                probs=probs,
                rationale=rationale,
                memories=[
                    {"id": item.id, "layer": item.layer.value, "score": score, "text": item.text[:160]}
                    for item, score in evidence
                ] + [{"id": s.item.id, "layer": "reflection", "score": s.score, "text": s.item.text[:160]} for s in lessons],
                components=components,
                prompt=rendered.user if records else None,  # only what the model was shown
                llm_calls=records,
                model_calls=model_calls,
                latency_s=time.perf_counter() - started,
            )
        # The reports are consumed here: clearing them keeps the later steps' checkpoints small.
        return {"decisions": decisions, "calibration": calibration, "reports": None}

    node.__name__ = NodeName.DIRECTION.value
    return node
