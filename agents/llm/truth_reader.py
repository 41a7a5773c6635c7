"""``TruthReader``: an evaluation-only ``LLM`` that reads every analyst item with its true tone.

It answers the analysts' impact choice (positive / negative / neutral / irrelevant) for an item
of a synthetic market with the tone the generator gave it (``MarketData.truth``), and passes every
other call to the wrapped LLM. Running the agent on it measures the *pipeline* (memory, direction,
risk, execution) when *reading* is perfect. It is built only by evaluation code
(``benchmarks/eval_synthetic.py``) and passed to ``agents.runtime.execute(llms=...)``; no scenario
config can select it, so a normal run never sees the truth.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from env.errors import ConfigError
from env.market import MarketData

from .base import LLM, CallRecord, ChatMessage, ChoiceRequest, ChoiceResult, StructuredResult, TextResult

IMPACT = ("positive", "negative", "neutral", "irrelevant")


class TruthReader:
    """See the module docstring. ``confidence`` is the probability put on the true tone's label."""

    def __init__(self, inner: LLM, data: MarketData, *, confidence: float = 0.9) -> None:
        truth = data.truth
        if truth is None or not truth.item_sentiment:
            raise ConfigError("the truth-reading analysts need a synthetic market's ground truth")
        self.inner = inner
        self.confidence = confidence
        # An analyst's item text starts with the headline (news) on a line of its own.
        self._tone_by_line = {n.headline: truth.item_sentiment[n.id] for n in data.news if n.id in truth.item_sentiment}
        self.answered = 0

    def _tone(self, messages: Sequence[ChatMessage]) -> float | None:
        for line in messages[-1].content.splitlines():
            tone = self._tone_by_line.get(line.strip())
            if tone is not None:
                return tone
        return None

    def _answer(self, tone: float, agent: str, tokens_in: int) -> ChoiceResult:
        label = "positive" if tone > 0 else "negative" if tone < 0 else "neutral"
        rest = (1.0 - self.confidence) / 3.0
        probs = {o: (self.confidence if o == label else rest) for o in IMPACT}
        record = CallRecord(agent=agent, backend="truth", model="truth", kind="choose", tokens_in=tokens_in, tokens_out=0,
                            latency_s=0.0, cache_hit=False, cost_usd=0.0, fallback=False, attempts=0)
        self.answered += 1
        return ChoiceResult(choice=label, probs=probs, record=record)

    def choose(self, messages: Sequence[ChatMessage], options: Sequence[str], *, agent: str, fallback: str) -> ChoiceResult:
        tone = self._tone(messages) if tuple(options) == IMPACT else None
        if tone is None:
            return self.inner.choose(messages, options, agent=agent, fallback=fallback)
        return self._answer(tone, agent, sum(len(m.content.split()) for m in messages))

    def choose_many(self, requests: Sequence[ChoiceRequest], *, agent: str) -> list[ChoiceResult]:
        out: list[ChoiceResult | None] = []
        passed: list[tuple[int, ChoiceRequest]] = []
        for k, r in enumerate(requests):
            tone = self._tone(r.messages) if tuple(r.options) == IMPACT else None
            if tone is None:
                passed.append((k, r))
                out.append(None)
            else:
                out.append(self._answer(tone, agent, sum(len(m.content.split()) for m in r.messages)))
        if passed:
            for (k, _), res in zip(passed, self.inner.choose_many([r for _, r in passed], agent=agent), strict=True):
                out[k] = res
        return [r for r in out if r is not None]

    def text(self, messages: Sequence[ChatMessage], *, agent: str, max_tokens: int = 128, temperature: float = 0.0) -> TextResult:
        return self.inner.text(messages, agent=agent, max_tokens=max_tokens, temperature=temperature)

    def structured(self, messages: Sequence[ChatMessage], schema: type[BaseModel], *, agent: str, fallback: BaseModel) -> StructuredResult:
        return self.inner.structured(messages, schema, agent=agent, fallback=fallback)
