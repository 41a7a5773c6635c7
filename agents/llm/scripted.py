"""``ScriptedLLM``: an ``LLM`` whose answers come from a script, for fast node tests and for
benchmarks that measure the graph rather than a model (no weights, no network).

``choose`` asks ``probs(agent, messages, options)`` for a probability per option (default:
uniform), ``text`` asks ``text(agent, messages)`` (default: a fixed sentence), ``structured``
returns the fallback. Every call is kept in ``calls`` so a test can assert what an agent asked.
Records say ``backend="scripted"``; they are never cached, and each call counts as a model call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from .base import CallRecord, ChatMessage, ChoiceRequest, ChoiceResult, StructuredResult, TextResult, validate_options

ProbScript = Callable[[str, Sequence[ChatMessage], Sequence[str]], dict[str, float]]
TextScript = Callable[[str, Sequence[ChatMessage]], str]


@dataclass(frozen=True)
class ScriptedCall:
    agent: str
    kind: str
    messages: tuple[ChatMessage, ...]
    options: tuple[str, ...] = ()


class ScriptedLLM:
    """See the module docstring."""

    def __init__(self, probs: ProbScript | None = None, text: TextScript | None = None) -> None:
        self._probs = probs
        self._text = text
        self.calls: list[ScriptedCall] = []
        self._lock = threading.Lock()  # parallel analyst nodes may share one instance

    def _record(self, agent: str, kind: str, tokens_in: int, *, fallback: bool = False) -> CallRecord:
        return CallRecord(
            agent=agent, backend="scripted", model="scripted", kind=kind, tokens_in=tokens_in, tokens_out=0,
            latency_s=0.0, cache_hit=False, cost_usd=0.0, fallback=fallback, attempts=1,
        )

    def _log(self, call: ScriptedCall) -> None:
        with self._lock:
            self.calls.append(call)

    def text(self, messages: Sequence[ChatMessage], *, agent: str, max_tokens: int = 128, temperature: float = 0.0) -> TextResult:
        self._log(ScriptedCall(agent, "text", tuple(messages)))
        out = self._text(agent, messages) if self._text else "Scripted lesson: keep positions small when signals disagree."
        return TextResult(text=out, record=self._record(agent, "text", _tokens(messages)))

    def structured(self, messages: Sequence[ChatMessage], schema: type[BaseModel], *, agent: str, fallback: BaseModel) -> StructuredResult:
        self._log(ScriptedCall(agent, "structured", tuple(messages)))
        return StructuredResult(value=fallback, record=self._record(agent, "structured", _tokens(messages), fallback=True))

    def choose(self, messages: Sequence[ChatMessage], options: Sequence[str], *, agent: str, fallback: str) -> ChoiceResult:
        validate_options(options, fallback)
        self._log(ScriptedCall(agent, "choose", tuple(messages), tuple(options)))
        raw = self._probs(agent, messages, options) if self._probs else dict.fromkeys(options, 1.0)
        unknown = set(raw) - set(options)
        if unknown:
            raise ValueError(f"script answered options {sorted(unknown)} that are not among {list(options)}")
        total = sum(max(0.0, raw.get(o, 0.0)) for o in options)
        if total <= 0:
            raise ValueError(f"script gave no positive probability over {list(options)}")
        probs = {o: max(0.0, raw.get(o, 0.0)) / total for o in options}
        choice = max(options, key=lambda o: probs[o])
        return ChoiceResult(choice=choice, probs=probs, record=self._record(agent, "choose", _tokens(messages)))

    def choose_many(self, requests: Sequence[ChoiceRequest], *, agent: str) -> list[ChoiceResult]:
        return [self.choose(r.messages, r.options, agent=agent, fallback=r.fallback) for r in requests]

    def close(self) -> None:
        """Nothing to release (the pool protocol)."""


def _tokens(messages: Sequence[ChatMessage]) -> int:
    """A rough token count (words), so accounting and budgets see plausible numbers."""
    return sum(len(m.content.split()) for m in messages)
