"""FinRL-DeepSeek's per ticker-day LLM scores, through the project's LLM layer.

For every session ``i`` and ticker, the news published after the close of ``i - 1`` and by the
close of ``i`` (``data.view(i).news(ticker, since=i - 1)``) is rendered into
``prompts/deepseek_recommendation.md`` and ``prompts/deepseek_risk.md``; the model ``choose``-s
one of "1".."5" for each (fallback "3", recorded). A session without news gets the neutral 3
and costs no call. Answers go through ``LLMClient``, so any backend works and a cache in
record/auto mode replays them: a second pass over the same data makes 0 model calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agents.llm.base import LLM, ChoiceRequest
from agents.prompts import PromptLibrary
from agents.rl.modulation import NEUTRAL_SCORE, ScoreTable
from agents.state import AgentName
from env.market import MarketData

OPTIONS = ("1", "2", "3", "4", "5")
RECOMMENDATION_AGENT = AgentName.DEEPSEEK_RECOMMENDATION.value
RISK_AGENT = AgentName.DEEPSEEK_RISK.value


@dataclass(frozen=True)
class ScoringStats:
    """What building a ``ScoreTable`` cost: prompts sent, backend passes, cache hits and fallbacks."""

    prompts: int
    model_calls: int
    cache_hits: int
    fallbacks: int
    sessions_with_news: int


def news_digest(items: list, chars: int) -> str:
    """One line per article: headline, then the start of its body (``chars`` characters at most)."""
    lines = []
    for item in items:
        body = " ".join(item.body.split())
        lines.append(f"- {item.headline}" + (f": {body[:chars]}" if body and chars > 0 else ""))
    return "\n".join(lines)


def score_news(
    data: MarketData,
    recommendation_llm: LLM,
    risk_llm: LLM,
    *,
    last: int,
    prompts: PromptLibrary | None = None,
    body_chars: int = 0,
    max_items: int = 3,
    batch: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ScoreTable, ScoringStats]:
    """Recommendation and risk scores for sessions 0..last (neutral 3 after ``last`` and without news).

    Defaults keep prompts short for a CPU model: the last ``max_items`` headlines of the session,
    ``body_chars`` characters of each body (0: headlines only).
    """
    library = prompts or PromptLibrary()
    n = len(data.tickers)
    rec = np.full((len(data), n), NEUTRAL_SCORE, dtype=np.int8)
    risk = rec.copy()
    jobs: list[tuple[int, int, str]] = []  # (session, ticker column, digest)
    for i in range(last + 1):
        view = data.view(i)
        for k, ticker in enumerate(data.tickers):
            items = view.news(ticker, since=i - 1 if i > 0 else None)
            if items:
                jobs.append((i, k, news_digest(items[-max_items:], body_chars)))
    calls = hits = fallbacks = 0
    for start in range(0, len(jobs), batch):
        chunk = jobs[start : start + batch]
        for llm, agent, table in ((recommendation_llm, RECOMMENDATION_AGENT, rec), (risk_llm, RISK_AGENT, risk)):
            requests = [
                ChoiceRequest(
                    messages=library.render(agent, ticker=data.tickers[k], date=data.dates[i].isoformat(), news=digest).chat(),
                    options=OPTIONS,
                    fallback="3",
                )
                for i, k, digest in chunk
            ]
            results = llm.choose_many(requests, agent=agent)
            calls += int(any(not r.record.cache_hit for r in results))
            for (i, k, _), result in zip(chunk, results):
                table[i, k] = int(result.choice)
                hits += int(result.record.cache_hit)
                fallbacks += int(result.record.fallback)
        if progress is not None:
            progress(min(start + batch, len(jobs)), len(jobs))
    stats = ScoringStats(
        prompts=2 * len(jobs), model_calls=calls, cache_hits=hits, fallbacks=fallbacks,
        sessions_with_news=len({i for i, _, _ in jobs}),
    )
    return ScoreTable(data.tickers, rec, risk), stats
