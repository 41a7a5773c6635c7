"""Analyst agents. News, filings and macro analysts share one factory and differ by data: which
items they read from the point-in-time view, how an item is shown, and their prompt file.

Each analyst reads only the items that became public since the previous decision, judges every
item with one closed-set choice (positive / negative / neutral / irrelevant: relevance and impact
in a single calibrated call, batched over the session's items), writes a one-sentence reason and
stores the relevant items in the layered memory. The market analyst summarises indicators computed
in code and calls the trend.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.deps import Deps
from agents.llm.base import ChoiceRequest, ChoiceResult, model_calls_of
from agents.memory_items import make_memory_item
from agents.prompts import PromptLibrary, RenderedPrompt
from agents.state import ANALYST_AGENTS, ANALYST_NODES, AgentName, AnalystKind, AnalystReport, ItemJudgement, NodeName, RunState
from env.indicators import macd_histogram, rsi
from env.market import MarketView
from env.records import NewsItem

IMPACT_OPTIONS = ("positive", "negative", "neutral", "irrelevant")
TREND_OPTIONS = ("bullish", "bearish", "neutral")


@dataclass(frozen=True)
class TextUnit:
    """One thing an analyst judges: an article, a filing section, a macro release."""

    item_id: str
    source_type: str
    text: str
    url: str
    public_at: Any
    event_date: Any


def news_text(n: NewsItem, max_chars: int) -> str:
    """How a news item reads to the analysts, the memory and the reward adapter (one format for all)."""
    return f"{n.headline}\n{n.source}, {n.published_at:%Y-%m-%d %H:%M} UTC\n{n.body[:max_chars]}"


def news_units(view: MarketView, ticker: str, since: int, max_chars: int) -> list[TextUnit]:
    return [
        TextUnit(n.id, n.source_type.value, news_text(n, max_chars), n.url, n.public_at, n.published_at.date())
        for n in view.news(ticker, since=since)
    ]


def filing_units(view: MarketView, ticker: str, since: int, max_chars: int) -> list[TextUnit]:
    out = []
    for f in view.filings(ticker, since=since):
        for name, body in f.sections.items():
            text = f"{f.form} filed {f.filed_at:%Y-%m-%d}, period {f.period}, section {name}:\n{body[:max_chars]}"
            out.append(TextUnit(f"{f.id}#{name}", f.source_type.value, text, f.url, f.public_at, f.period or f.filed_at.date()))
    return out


def macro_units(view: MarketView, ticker: str, since: int, max_chars: int) -> list[TextUnit]:
    out = []
    for m in view.macro(since=since):
        text = f"{m.series} for {m.date}: {m.value:g}\n{m.text[:max_chars]}"
        out.append(TextUnit(f"{m.id}@{ticker}", m.source_type.value, text, "", m.public_at, m.date))
    return out


UnitReader = Callable[[MarketView, str, int, int], list[TextUnit]]

TEXT_READERS: dict[AnalystKind, UnitReader] = {
    AnalystKind.NEWS: news_units,
    AnalystKind.FILINGS: filing_units,
    AnalystKind.MACRO: macro_units,
}


def judge_reason(kind: AnalystKind, probs: dict[str, float], adapter_p_up: float | None) -> tuple[str, float, str]:
    """The one-sentence reason, the impact score P(pos) - P(neg), and the impact label."""
    relevance = 1.0 - probs["irrelevant"]
    impact = max(("positive", "negative", "neutral"), key=lambda k: probs[k])
    score = probs["positive"] - probs["negative"]
    sentence = (
        f"The {kind.value} analyst rates this item {'relevant' if relevance >= 0.5 else 'marginal'} "
        f"(P={relevance:.2f}) with a {impact} expected impact "
        f"(positive {probs['positive']:.2f} vs negative {probs['negative']:.2f})"
    )
    if adapter_p_up is not None:
        sentence += f"; the reward-trained head puts P(up) at {adapter_p_up:.2f}"
    return sentence + ".", score, impact


def item_prompt(prompts: PromptLibrary, name: str, *, ticker: str, date: str, item: str) -> RenderedPrompt:
    """A text analyst's prompt for one item; ``date`` goes only to a template that declares it (the
    shipped ones do: without the decision-time line the news analyst read worse, README)."""
    values = {"ticker": ticker, "item": item}
    if "date" in prompts.templates[name].variables:
        values["date"] = date
    return prompts.render(name, **values)


def impact_requests(deps: Deps, agent: AgentName, ticker: str, date: str, units: Sequence[TextUnit]) -> list[ChoiceRequest]:
    """One closed-set impact choice per unit, from the agent's prompt file."""
    return [
        ChoiceRequest(
            messages=item_prompt(deps.prompts, agent.value, ticker=ticker, date=date, item=u.text).chat(),
            options=IMPACT_OPTIONS,
            fallback="irrelevant",
        )
        for u in units
    ]


def judge_history(deps: Deps, state: RunState, sessions: int) -> dict:
    """At the first decision, the news analyst judges the news of the last ``sessions`` warm-up
    sessions (all public by now), so the judgement calibrator has matured examples to learn from
    before the first trade. Judged items go to the journal only (not to memory). Items judged
    already (a re-run node) are skipped. Returns what the trace records."""
    view = deps.data.view(state.day)
    agent = AgentName.NEWS_ANALYST
    since = max(-1, state.day - 1 - sessions)
    cfg = deps.config.analysts
    judged, calls, started = 0, 0, time.perf_counter()
    for ticker in view.tickers:
        # Today's items are the news analyst's own business this session; items judged already are skipped.
        today = {n.id for n in view.news(ticker, since=state.prev_day)}
        units = [u for u in news_units(view, ticker, since, cfg.max_item_chars) if u.public_at < view.decision_time and u.item_id not in today]
        known = deps.journal.judgement_scores([u.item_id for u in units], state.day)
        units = [u for u in units if u.item_id not in known]
        if not units:
            continue
        results = deps.llm(agent).choose_many(impact_requests(deps, agent, ticker, str(view.date), units), agent=agent.value)
        calls += model_calls_of([r.record for r in results])
        deps.journal.add_judgements(
            [(u.item_id, AnalystKind.NEWS.value, ticker, state.day, r.probs["positive"] - r.probs["negative"]) for u, r in zip(units, results, strict=True)]
        )
        judged += len(units)
    return {"history_judged": judged, "history_model_calls": calls, "history_seconds": time.perf_counter() - started}


def make_analyst(kind: AnalystKind, deps: Deps) -> Callable[[RunState], dict]:
    """A text analyst node (news, filings or macro) for every ticker in the scenario."""
    reader, agent = TEXT_READERS[kind], ANALYST_AGENTS[kind]
    cfg = deps.config.analysts
    node_name = ANALYST_NODES[kind]

    def node(state: RunState) -> dict:
        view = deps.data.view(state.day)
        deps.adapter.ensure(state.adapter_version)
        since = state.prev_day
        reports: dict[str, AnalystReport] = {}
        for ticker in view.tickers:
            started = time.perf_counter()
            units = reader(view, ticker, since, cfg.max_item_chars)
            skipped = max(0, len(units) - cfg.max_items_per_day)
            units = units[-cfg.max_items_per_day :]
            report = AnalystReport(analyst=kind, ticker=ticker, day=state.day, skipped=skipped)
            if units:
                requests = impact_requests(deps, agent, ticker, str(view.date), units)
                results: list[ChoiceResult] = deps.llm(agent).choose_many(requests, agent=agent.value)
                model_calls = model_calls_of([res.record for res in results])
                p_ups = deps.adapter.predict([u.text for u in units])
                items, reasons, to_store = [], [], []
                for unit, res, p_up in zip(units, results, p_ups, strict=True):
                    reason, score, impact = judge_reason(kind, res.probs, p_up)
                    reasons.append(reason)
                    relevance = 1.0 - res.probs["irrelevant"]
                    stored = relevance >= cfg.relevance_threshold
                    memory_id = None
                    if stored:
                        item = make_memory_item(
                            text=unit.text,
                            ticker=ticker,
                            source_type=unit.source_type,
                            source_id=unit.item_id,
                            url=unit.url,
                            event_date=unit.event_date,
                            public_at=unit.public_at,
                            reason=reason,
                            relevance=relevance,
                            impact=impact,
                            impact_score=score,
                        )
                        to_store.append(item)
                        memory_id = item.id  # deterministic: the store keeps it under this id
                    items.append(
                        ItemJudgement(
                            item_id=unit.item_id,
                            source_type=unit.source_type,
                            probs=res.probs,
                            relevance=relevance,
                            impact=impact,
                            impact_score=score,
                            adapter_p_up=p_up,
                            stored=stored,
                            memory_id=memory_id,
                            fallback=res.record.fallback,
                        )
                    )
                if to_store:  # one write for the session's items
                    deps.memory.add(to_store, as_of=view.decision_time)
                # The judgements wait in the journal for their items' labels (the judgement calibrator).
                deps.journal.add_judgements([(i.item_id, kind.value, ticker, state.day, i.impact_score) for i in items])
                report = report.model_copy(update={"judgements": items})
                deps.tracer.write(
                    day=state.day,
                    date=str(view.date),
                    phase=state.phase.value,
                    node=node_name.value,
                    ticker=ticker,
                    items=[{**i.model_dump(mode="json"), "reason": r} for i, r in zip(items, reasons, strict=True)],
                    prompt=requests[0].messages[-1].content,
                    prompts=[r.messages[-1].content for r in requests],
                    llm_calls=[r.record.model_dump(mode="json") for r in results],
                    model_calls=model_calls,
                    skipped=skipped,
                    latency_s=time.perf_counter() - started,
                )
            reports[ticker] = report
        return {"reports": {kind: reports}}

    node.__name__ = node_name.value
    return node


# -- market / technical analyst ---------------------------------------------------------------
def technical_indicators(closes: Sequence[float]) -> dict[str, float]:
    """Indicators from closes up to the decision date (pure; NaN-free for >= 2 prices). RSI(14) is
    Wilder's, as the ``rsi`` baseline computes it (50 until 15 closes are in)."""
    c = np.asarray(closes, dtype=float)
    r = np.diff(c) / c[:-1] if len(c) > 1 else np.zeros(1)

    def ret(n: int) -> float:
        return float(c[-1] / c[max(0, len(c) - 1 - n)] - 1.0)

    rsi14 = rsi(c, 14)
    return {
        "return_1d": ret(1),
        "return_5d": ret(5),
        "return_20d": ret(20),
        "price_vs_sma10": float(c[-1] / c[-10:].mean() - 1.0),
        "sma10_vs_sma30": float(c[-10:].mean() / c[-30:].mean() - 1.0),
        "rsi14": 50.0 if rsi14 is None else float(rsi14),
        "macd_hist": float(macd_histogram(c) / c[-1]),
        "volatility_20d_annual": float(r[-20:].std(ddof=1) * np.sqrt(252)) if r.size > 2 else 0.0,
    }


def format_indicators(ind: dict[str, float]) -> str:
    return "\n".join(
        [
            f"- return 1d {ind['return_1d']:+.2%}, 5d {ind['return_5d']:+.2%}, 20d {ind['return_20d']:+.2%}",
            f"- price vs 10-day average {ind['price_vs_sma10']:+.2%}; 10-day vs 30-day average {ind['sma10_vs_sma30']:+.2%}",
            f"- RSI(14) {ind['rsi14']:.0f}; MACD histogram {ind['macd_hist']:+.3%} of price",
            f"- annualised 20-day volatility {ind['volatility_20d_annual']:.1%}",
        ]
    )


def make_market_analyst(deps: Deps) -> Callable[[RunState], dict]:
    """The market/technical analyst node: indicators in code, a calibrated trend call by the model.

    The trend call is read by the direction agent twice: as evidence (``direction.technical_weight``)
    and in the direction LLM's prompt (``direction.llm_weight``). With both weights 0 nothing reads
    it, so it is not made: the node still computes and traces the indicators."""
    cfg = deps.config.analysts
    agent = AgentName.MARKET_ANALYST
    direction = deps.config.direction
    asks_model = direction.technical_weight > 0 or direction.llm_weight > 0

    def node(state: RunState) -> dict:
        view = deps.data.view(state.day)
        reports: dict[str, AnalystReport] = {}
        for ticker in view.tickers:
            started = time.perf_counter()
            closes = view.series(ticker, "close", lookback=cfg.technical_lookback_days)
            ind = technical_indicators(closes)
            summary = format_indicators(ind)
            res, call = None, {"trend_call": "not made: direction.technical_weight and direction.llm_weight are 0, so no decision reads it"}
            if asks_model:
                rendered = deps.prompts.render(agent.value, ticker=ticker, date=str(view.date), summary=summary)
                res = deps.llm(agent).choose(rendered.chat(), TREND_OPTIONS, agent=agent.value, fallback="neutral")
                call = {"prompt": rendered.user}
            records = [res.record] if res else []
            probs = res.probs if res else None
            reports[ticker] = AnalystReport(
                analyst=AnalystKind.MARKET, ticker=ticker, day=state.day, trend_probs=probs, summary=summary
            )
            deps.tracer.write(
                day=state.day,
                date=str(view.date),
                phase=state.phase.value,
                node=NodeName.MARKET_ANALYST.value,
                ticker=ticker,
                summary=summary,
                indicators=ind,
                probs=probs,
                llm_calls=[r.model_dump(mode="json") for r in records],
                model_calls=model_calls_of(records),
                latency_s=time.perf_counter() - started,
                **call,
            )
        return {"reports": {AnalystKind.MARKET: reports}}

    node.__name__ = NodeName.MARKET_ANALYST.value
    return node
