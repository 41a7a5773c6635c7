"""The one LLM interface every agent talks to, and its result types.

Three calls: ``text`` (free text), ``structured`` (a validated pydantic instance) and
``choose`` (one option out of a closed set, with a probability per option), plus
``choose_many`` to batch several choices. Every result carries a ``CallRecord`` for
traces. Records are JSON-serialisable and never contain API keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator, model_validator

Role = Literal["system", "user", "assistant"]
CallKind = Literal["text", "structured", "choose"]


class ChatMessage(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role = Field(description="Who speaks: system, user or assistant.")
    content: str = Field(description="The message text.")


class CallRecord(BaseModel):
    """What one call cost and how it went; goes into the run trace as JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str = Field(description="Agent that made the call.")
    backend: str = Field(description="Backend kind that served it (local, openai, vllm).")
    model: str = Field(description="Model name or file stem.")
    kind: CallKind = Field(description="Which interface call: text, structured or choose.")
    tokens_in: int = Field(ge=0, description="Prompt tokens (including repair retries and option tokens).")
    tokens_out: int = Field(ge=0, description="Generated tokens (0 for likelihood scoring).")
    latency_s: float = Field(ge=0, description="Wall time of the call in seconds (lookup time on a cache hit).")
    cache_hit: bool = Field(description="True if served from the record/replay cache without a model call.")
    cost_usd: float = Field(ge=0, description="Estimated cost from the configured price table (0 on a cache hit).")
    fallback: bool = Field(description="True if the declared fallback was returned instead of a model answer.")
    fallback_reason: str | None = Field(default=None, description="Why the fallback was used.")
    server_failure: bool = Field(
        default=False,
        description="True when the fallback is due to the server (retries exhausted), not to the model's answer: "
        "such results are not cached, so a resumed or repeated run asks again.",
    )
    raw_output: str | None = Field(default=None, description="Raw model text of the last attempt, if any.")
    path: str | None = Field(
        default=None,
        description="How choose got its answer: logprobs, json_schema, function_calling, json_mode or text "
        "(the option parsed out of free text).",
    )
    attempts: int = Field(ge=0, description="Model requests made, including retries and the repair retry.")
    error: str | None = Field(default=None, description="Last error seen (type and message), if any.")


def model_calls_of(records: Sequence[CallRecord]) -> int:
    """Backend invocations behind the records of ONE interface call (``text``, ``structured``,
    ``choose`` or a ``choose_many`` batch): 1 if any answer came from the model, 0 if all were
    replayed from the cache. A property of the results, so parallel nodes sharing a client cannot
    count each other's calls."""
    return int(any(not record.cache_hit for record in records))


class TextResult(BaseModel):
    """Result of ``LLM.text``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(description="The generated text.")
    record: CallRecord = Field(description="Accounting and trace record of the call.")


class StructuredResult(BaseModel):
    """Result of ``LLM.structured``: ``value`` is an instance of the requested schema (or the fallback)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: SerializeAsAny[BaseModel] = Field(description="Validated instance of the requested schema.")
    record: CallRecord = Field(description="Accounting and trace record of the call.")


class ChoiceRequest(BaseModel):
    """One item of ``LLM.choose_many``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: tuple[ChatMessage, ...] = Field(min_length=1, description="The prompt.")
    options: tuple[str, ...] = Field(min_length=2, description="The closed set of answers, all distinct.")
    fallback: str = Field(description="Answer returned (and recorded as a fallback) if the model cannot answer.")

    @model_validator(mode="after")
    def _check_options(self) -> ChoiceRequest:
        validate_options(self.options, self.fallback)
        return self


class ChoiceResult(BaseModel):
    """Result of ``LLM.choose``: the chosen option and a probability for every option."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    choice: str = Field(description="The chosen option (highest probability, or the fallback).")
    probs: dict[str, float] = Field(description="Probability per option, in option order, summing to 1.")
    scores: dict[str, float] | None = Field(
        default=None, description="Raw per-option log-likelihoods (local backend) before calibration."
    )
    calibrated: bool = Field(default=False, description="True if content-free calibration was applied.")
    record: CallRecord = Field(description="Accounting and trace record of the call.")

    @field_validator("probs")
    @classmethod
    def _sums_to_one(cls, probs: dict[str, float]) -> dict[str, float]:
        total = sum(probs.values())
        if probs and abs(total - 1.0) > 1e-6:
            raise ValueError(f"probs must sum to 1, got {total}")
        return probs


def validate_options(options: Sequence[str], fallback: str) -> None:
    """Raise ``ValueError`` if options are too few, empty, duplicated, or miss the fallback."""
    if len(options) < 2:
        raise ValueError(f"options: need at least 2, got {list(options)}")
    if any(not option.strip() for option in options):
        raise ValueError(f"options: empty option in {list(options)}")
    if len(set(options)) != len(options):
        raise ValueError(f"options: duplicates in {list(options)}")
    if fallback not in options:
        raise ValueError(f"fallback {fallback!r} is not one of the options {list(options)}")


@runtime_checkable
class LLM(Protocol):
    """The interface agents use. Implementations: ``agents.llm.client.LLMClient`` over any backend."""

    def text(
        self, messages: Sequence[ChatMessage], *, agent: str, max_tokens: int = 128, temperature: float = 0.0
    ) -> TextResult:
        """Free text. Greedy when ``temperature`` is 0."""
        ...

    def structured(
        self, messages: Sequence[ChatMessage], schema: type[BaseModel], *, agent: str, fallback: BaseModel
    ) -> StructuredResult:
        """A validated ``schema`` instance; after one repair retry, ``fallback`` (recorded as such)."""
        ...

    def choose(
        self, messages: Sequence[ChatMessage], options: Sequence[str], *, agent: str, fallback: str
    ) -> ChoiceResult:
        """One of ``options`` with a probability per option."""
        ...

    def choose_many(self, requests: Sequence[ChoiceRequest], *, agent: str) -> list[ChoiceResult]:
        """Several ``choose`` calls, batched into as few model passes as the backend allows."""
        ...
