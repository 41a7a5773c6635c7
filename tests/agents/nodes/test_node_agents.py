"""The analyst, direction and risk nodes on scripted model answers."""

from __future__ import annotations

import math

import pytest

from agents.analysts import make_analyst, make_market_analyst
from agents.direction import make_direction_agent
from agents.memory_items import make_memory_item
from agents.risk import make_risk_node
from agents.state import Action, AnalystKind, AnalystReport, DirectionDecision, ItemJudgement, NodeName
from agents.trace import format_trace
from memory.base import Layer


def _first_day_with(k, kind: str) -> int:
    """The first decision session with at least one item of ``kind`` new since the previous session."""
    state = k.state()
    for day in range(state.first_day, state.end_day + 1):
        view = k.data.view(day)
        items = view.news("ACME", since=day - 1) if kind == "news" else view.filings("ACME", since=day - 1)
        if items:
            return day
    raise AssertionError(f"the tiny market has no {kind} in its decision window; the fixture changed")


def test_news_analyst_stores_relevant_items_in_the_shallow_layer(kit):
    k = kit(lambda agent, messages, options: {"positive": 0.7, "negative": 0.1, "neutral": 0.1, "irrelevant": 0.1})
    day = _first_day_with(k, "news")
    out = make_analyst(AnalystKind.NEWS, k.deps)(k.state(day=day, prev_day=day - 1))
    report = out["reports"][AnalystKind.NEWS]["ACME"]
    assert report.judgements and all(j.stored and j.impact == "positive" for j in report.judgements)
    assert report.judgements[0].impact_score == pytest.approx(0.6)
    items = k.deps.memory.get([j.memory_id for j in report.judgements])
    assert {i.layer for i in items} == {Layer.SHALLOW}
    assert {c.agent for c in k.llm.calls} == {"news_analyst"}
    # Untrusted article text reaches the model fenced.
    assert "UNTRUSTED DATA" in k.llm.calls[0].messages[-1].content


def test_irrelevant_items_are_judged_but_not_stored(kit):
    k = kit(lambda agent, messages, options: {"positive": 0.02, "negative": 0.02, "neutral": 0.06, "irrelevant": 0.9})
    day = _first_day_with(k, "news")
    out = make_analyst(AnalystKind.NEWS, k.deps)(k.state(day=day, prev_day=day - 1))
    report = out["reports"][AnalystKind.NEWS]["ACME"]
    assert report.judgements and not any(j.stored for j in report.judgements)
    assert k.deps.memory.count() == 0


def test_filings_go_to_the_deep_layer_when_annual_or_quarterly(kit):
    k = kit(lambda agent, messages, options: {"positive": 0.4, "negative": 0.3, "neutral": 0.2, "irrelevant": 0.1})
    day = _first_day_with(k, "filings")
    out = make_analyst(AnalystKind.FILINGS, k.deps)(k.state(day=day, prev_day=day - 1))
    judgements = out["reports"][AnalystKind.FILINGS]["ACME"].judgements
    items = k.deps.memory.get([j.memory_id for j in judgements if j.stored])
    expected = {"10-K": Layer.DEEP, "10-Q": Layer.DEEP, "8-K": Layer.INTERMEDIATE}
    assert items and all(i.layer == expected[i.source_type.value] for i in items)


def test_market_analyst_reports_wilder_rsi_and_the_trend_call(kit):
    from env.indicators import rsi

    k = kit(lambda agent, messages, options: {"bullish": 0.6, "bearish": 0.2, "neutral": 0.2})
    state = k.state()
    out = make_market_analyst(k.deps)(state)
    report = out["reports"][AnalystKind.MARKET]["ACME"]
    assert report.trend_probs == pytest.approx({"bullish": 0.6, "bearish": 0.2, "neutral": 0.2})
    closes = k.data.view(state.day).series("ACME", "close", lookback=k.config.analysts.technical_lookback_days)
    assert k.traces(NodeName.MARKET_ANALYST.value)[0]["indicators"]["rsi14"] == pytest.approx(rsi(closes, 14))


@pytest.mark.parametrize("technical, llm, asked", [(0.0, 0.0, False), (0.0, 1.0, True), (0.5, 0.0, True)])
def test_market_analyst_makes_the_trend_call_only_when_a_decision_reads_it(kit, technical, llm, asked):
    k = kit(lambda agent, messages, options: {"bullish": 0.6, "bearish": 0.2, "neutral": 0.2},
            **{"direction.technical_weight": technical, "direction.llm_weight": llm})
    report = make_market_analyst(k.deps)(k.state())["reports"][AnalystKind.MARKET]["ACME"]
    (trace,) = k.traces(NodeName.MARKET_ANALYST.value)
    assert bool(k.llm.calls) == asked and trace["model_calls"] == int(asked)
    assert (report.trend_probs is not None) == asked
    # The indicators are computed and traced either way; the summary still reaches the direction agent.
    assert set(trace["indicators"]) >= {"rsi14", "macd_hist"} and report.summary == trace["summary"]
    if not asked:
        assert trace["llm_calls"] == [] and "not made" in trace["trend_call"]
        assert "trend_call: not made" in format_trace(trace)


def _today_item(k, state, impact_score: float) -> ItemJudgement:
    view = k.data.view(state.day)
    item = make_memory_item(
        text=f"ACME news with impact {impact_score}", ticker="ACME", source_type="news", source_id=f"n{impact_score}",
        url="", event_date=view.date, public_at=view.decision_time, reason="r", relevance=1.0,
        impact="positive" if impact_score > 0 else "negative", impact_score=impact_score,
    )
    memory_id = k.deps.memory.add([item], as_of=view.decision_time)[0]
    return ItemJudgement(item_id=item.source_id, source_type="news", probs={}, relevance=1.0, impact=item.impact_label,
                         impact_score=impact_score, stored=True, memory_id=memory_id)


@pytest.mark.parametrize("impact, action", [(0.9, Action.BUY), (-0.9, Action.SELL)])
def test_direction_follows_todays_news_when_the_model_has_no_view(kit, impact, action):
    k = kit()  # uniform answers everywhere: the LLM and the trend call carry no information
    state = k.state()
    reports = {AnalystKind.NEWS: {"ACME": AnalystReport(analyst=AnalystKind.NEWS, ticker="ACME", day=state.day,
                                                        judgements=[_today_item(k, state, impact)])}}
    out = make_direction_agent(k.deps)(state.model_copy(update={"reports": reports}))
    dec = out["decisions"]["ACME"]
    assert dec.action == action
    assert (dec.p_up > 0.5) == (impact > 0)
    assert dec.memory_ids and (dec.news_p_up > 0.5) == (impact > 0)


def test_direction_with_llm_weight_0_does_not_ask_the_model_and_follows_the_news(kit):
    """A model that always says "sell" outvotes bullish news at weight 1; at weight 0 it is not asked."""
    sell = lambda agent, messages, options: {"buy": 0.001, "sell": 0.998, "hold": 0.001} if "buy" in options else dict.fromkeys(options, 1.0)  # noqa: E731
    decisions = {}
    for weight in (1.0, 0.0):
        k = kit(sell, **{"direction.llm_weight": weight})
        # Past answers averaged uniform: today's "sell" is a deviation from them, so it counts.
        state = k.state(calibration={"direction:ACME": {"n": 10.0, **dict.fromkeys(("buy", "sell", "hold"), math.log(1 / 3))}})
        reports = {AnalystKind.NEWS: {"ACME": AnalystReport(analyst=AnalystKind.NEWS, ticker="ACME", day=state.day,
                                                            judgements=[_today_item(k, state, 0.9)])}}
        out = make_direction_agent(k.deps)(state.model_copy(update={"reports": reports}))
        asked = [c for c in k.llm.calls if c.agent == "direction"]
        (trace,) = k.traces("direction")
        decisions[weight] = (out["decisions"]["ACME"], asked, trace)
    dec, asked, trace = decisions[1.0]
    assert asked and dec.action == Action.SELL and trace["model_calls"] == 1
    dec, asked, trace = decisions[0.0]
    assert not asked and trace["model_calls"] == 0 and trace["llm_calls"] == [] and trace["components"]["llm"] is None
    assert trace["prompt"] is None and decisions[1.0][2]["prompt"]
    assert dec.action == Action.BUY and dec.news_p_up > 0.5 and "LLM not asked" in trace["rationale"]


def test_direction_without_evidence_has_no_lean(kit):
    k = kit()
    out = make_direction_agent(k.deps)(k.state())
    dec = out["decisions"]["ACME"]
    assert dec.p_up == pytest.approx(0.5)
    assert dec.news_p_up == pytest.approx(0.5)


def _decision(action: Action, p_up: float) -> DirectionDecision:
    return DirectionDecision(ticker="ACME", action=action, probs={"buy": p_up, "sell": 1 - p_up, "hold": 0.0},
                             p_up=p_up)


def test_risk_node_sizes_by_kelly_under_the_cvar_budget_and_traces_the_caps(kit):
    k = kit(**{"risk.cvar_budget": 0.005})
    out = make_risk_node(k.deps)(k.state(decisions={"ACME": _decision(Action.BUY, 0.95)}))
    order = out["orders"]["ACME"]
    assert "cvar_budget" in order.caps
    assert order.target_weight == pytest.approx(0.005 / order.cvar)
    assert k.traces(NodeName.RISK.value)[0]["caps"] == order.caps


def test_fixed_sizing_ablation_buys_the_fixed_weight(kit):
    k = kit(**{"risk.sizing": "fixed", "risk.fixed_weight": 0.7, "risk.cvar_budget": 0.005})
    out = make_risk_node(k.deps)(k.state(decisions={"ACME": _decision(Action.BUY, 0.51)}))
    assert out["orders"]["ACME"].target_weight == pytest.approx(0.7)
    out = make_risk_node(k.deps)(k.state(decisions={"ACME": _decision(Action.HOLD, 0.51)}))
    assert out["orders"]["ACME"].target_weight == 0.0
