"""Any OpenAI-compatible chat-completions endpoint, through ``langchain_openai.ChatOpenAI``.

Retries are ours (``max_retries=0`` on the client) so each one is recorded: timeouts,
connection errors, HTTP 429 and 5xx are retried with capped exponential backoff
(``RetryConfig``; the sleep function is injectable). 401/403 and 404 fail fast with an
``LLMConfigError`` naming the config field to fix. Other 4xx raise ``LLMError``.

``structured`` asks via ``with_structured_output(<JSON schema>, method=..., include_raw=True)``
and validates with pydantic itself (so a bad answer never raises inside the SDK and the raw
text is kept); malformed output gets one repair retry, then the declared fallback. When
retries are exhausted, ``structured`` and ``choose`` return the fallback (recorded, with the
error) while ``text`` raises ``LLMError``: text has no declared fallback.

``choose`` is a structured answer ``{"choice": <enum of options>}``. Probabilities: with
``logprobs`` on and returned by the server, ``q`` is the probability mass of the top
alternatives at the first token of the answer value, attributed to the option each token
starts (tokens matching several options are ignored); otherwise ``q`` is one-hot on the
answer. The reported probabilities are ``(1 - s) * q + s / k`` with ``s`` =
``choice_smoothing`` and ``k`` options, so no option gets exactly 0 from a single sample.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import openai
from pydantic import BaseModel, ValidationError, create_model

from env.errors import LLMConfigError, LLMError

from .base import CallRecord, ChatMessage, ChoiceRequest, ChoiceResult, StructuredResult, TextResult
from .config import OpenAIBackendConfig, RetryConfig

log = logging.getLogger(__name__)

_RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)
_REPAIR_INSTRUCTION = "That reply was not valid: {error}. Reply again with only the corrected JSON object."
_JSON_MODE_INSTRUCTION = "Reply with one JSON object that validates against this JSON schema:\n{schema}"


class _Failure(Exception):
    """Internal: retries exhausted (carries the attempts made and the last error)."""

    def __init__(self, attempts: int, error: str) -> None:
        super().__init__(error)
        self.attempts = attempts
        self.error = error


class OpenAIBackend:
    """Chat-completions backend. ``name`` is the backend's key in ``llm.backends`` (for error messages)."""

    kind = "openai"

    def __init__(
        self,
        config: OpenAIBackendConfig,
        *,
        name: str,
        retry: RetryConfig | None = None,
        sleep: Callable[[float], None] = time.sleep,
        kind: str | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.model_name = config.model
        self.retry = retry or RetryConfig()
        self._sleep = sleep
        if kind is not None:
            self.kind = kind
        self._api_key = self._read_key()
        self._chat = self._make_chat()

    def __repr__(self) -> str:
        return f"OpenAIBackend(name={self.name!r}, model={self.config.model!r}, base_url={self.config.base_url!r})"

    def _read_key(self) -> str:
        env = self.config.api_key_env
        if env is None:
            return "not-needed"  # local servers (vLLM) accept any key; the SDK insists on one
        key = os.environ.get(env)
        if not key:
            raise LLMConfigError(
                f"llm.backends.{self.name}.api_key_env: environment variable {env!r} is not set or empty"
            )
        return key

    def _make_chat(self) -> Any:
        from langchain_openai import ChatOpenAI

        options: dict[str, Any] = {}
        if self.config.logprobs:
            options.update(logprobs=True, top_logprobs=self.config.top_logprobs)
        return ChatOpenAI(
            model=self.config.model,
            base_url=self.config.base_url,
            api_key=self._api_key,
            temperature=self.config.temperature,
            timeout=self.config.timeout_s,
            max_retries=0,
            use_responses_api=False,
            **options,
        )

    def close(self) -> None:
        """Nothing to release (the HTTP client closes with the process)."""

    def _scrub(self, text: str) -> str:
        # Servers sometimes echo the key in error messages; never let it into records or logs.
        return text.replace(self._api_key, "***") if self._api_key else text

    # ------------------------------------------------------------------ transport
    def _invoke(self, runnable: Any, messages: Sequence[ChatMessage], *, agent: str) -> tuple[Any, int]:
        """Invoke with retries; returns (output, attempts). Raises LLMConfigError, LLMError or _Failure."""
        payload = [(message.role, message.content) for message in messages]
        last = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                return runnable.invoke(payload), attempt
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise LLMConfigError(
                    f"llm.backends.{self.name}.api_key_env: the server rejected the key in "
                    f"${self.config.api_key_env} (HTTP {exc.status_code}: {self._scrub(exc.message)})"
                ) from None
            except openai.NotFoundError as exc:
                raise LLMConfigError(
                    f"llm.backends.{self.name}.model: model {self.config.model!r} not found at "
                    f"{self.config.base_url or 'api.openai.com'} (HTTP 404: {self._scrub(exc.message)}); "
                    f"check .model and .base_url"
                ) from None
            except _RETRYABLE as exc:
                last = self._scrub(_describe(exc, self.config.timeout_s))
                if attempt < self.retry.max_attempts:
                    delay = self.retry.delay_s(attempt)
                    log.warning(
                        "llm %s agent=%s attempt %d/%d failed (%s); retrying in %.2fs",
                        self.name, agent, attempt, self.retry.max_attempts, last, delay,
                    )
                    self._sleep(delay)
            except openai.APIStatusError as exc:
                raise LLMError(
                    f"llm.backends.{self.name}: request rejected (HTTP {exc.status_code}: {self._scrub(exc.message)})"
                ) from None
        log.error("llm %s agent=%s gave up after %d attempts: %s", self.name, agent, self.retry.max_attempts, last)
        raise _Failure(self.retry.max_attempts, last)

    @staticmethod
    def _usage(message: Any) -> tuple[int, int]:
        usage = getattr(message, "usage_metadata", None) or {}
        return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))

    def _record(self, agent: str, kind: str, start: float, **fields: Any) -> CallRecord:
        return CallRecord(
            agent=agent, backend=self.kind, model=self.model_name, kind=kind,
            latency_s=time.perf_counter() - start, cache_hit=False, cost_usd=0.0,
            **{"fallback": False, **fields},
        )

    # ------------------------------------------------------------------ text
    def text(
        self, messages: Sequence[ChatMessage], *, agent: str, max_tokens: int = 128, temperature: float = 0.0
    ) -> TextResult:
        """Free text; raises ``LLMError`` when retries are exhausted."""
        start = time.perf_counter()
        runnable = self._chat.bind(max_tokens=max_tokens, temperature=temperature)
        try:
            message, attempts = self._invoke(runnable, messages, agent=agent)
        except _Failure as failure:
            raise LLMError(
                f"llm.backends.{self.name}: agent {agent!r} text call failed after {failure.attempts} attempts: "
                f"{failure.error}"
            ) from None
        tokens_in, tokens_out = self._usage(message)
        content = message.content if isinstance(message.content, str) else json.dumps(message.content)
        record = self._record(
            agent, "text", start, tokens_in=tokens_in, tokens_out=tokens_out, raw_output=content, attempts=attempts
        )
        return TextResult(text=content, record=record)

    # ------------------------------------------------------------------ structured
    def _structured_call(
        self, messages: Sequence[ChatMessage], schema: type[BaseModel], *, agent: str
    ) -> tuple[BaseModel | None, dict[str, Any]]:
        """One structured request with a repair retry. Returns (value or None, record fields)."""
        json_schema = schema.model_json_schema()
        conversation = list(messages)
        if self.config.structured_method == "json_mode":
            instruction = _JSON_MODE_INSTRUCTION.format(schema=json.dumps(json_schema))
            conversation = [ChatMessage(role="system", content=instruction), *conversation]
        runnable = self._chat.bind(max_tokens=self.config.max_tokens).with_structured_output(
            json_schema, method=self.config.structured_method, include_raw=True
        )
        fields: dict[str, Any] = {"tokens_in": 0, "tokens_out": 0, "attempts": 0, "raw_output": None, "error": None}
        for round_ in (1, 2):
            try:
                output, attempts = self._invoke(runnable, conversation, agent=agent)
            except _Failure as failure:
                fields["attempts"] += failure.attempts
                fields.update(error=failure.error, fallback_reason=f"retries exhausted ({failure.attempts} attempts)")
                return None, fields
            fields["attempts"] += attempts
            raw_message = output["raw"]
            tokens_in, tokens_out = self._usage(raw_message)
            fields["tokens_in"] += tokens_in
            fields["tokens_out"] += tokens_out
            raw = _raw_text(raw_message)
            fields["raw_output"] = raw
            parsed, error = output.get("parsed"), output.get("parsing_error")
            if error is None and parsed is None:
                error = "no structured answer in the reply"
            if error is None:
                try:
                    return schema.model_validate(parsed), {**fields, "raw_message": raw_message}
                except ValidationError as exc:
                    error = exc
            text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            fields["error"] = self._scrub(text.splitlines()[0][:300])
            if round_ == 1:
                conversation = [
                    *conversation,
                    ChatMessage(role="assistant", content=raw),
                    ChatMessage(role="user", content=_REPAIR_INSTRUCTION.format(error=fields["error"])),
                ]
        fields["fallback_reason"] = "invalid structured output after one repair retry"
        return None, fields

    def structured(
        self, messages: Sequence[ChatMessage], schema: type[BaseModel], *, agent: str, fallback: BaseModel
    ) -> StructuredResult:
        """A validated ``schema`` instance, or ``fallback`` recorded as such."""
        start = time.perf_counter()
        value, fields = self._structured_call(messages, schema, agent=agent)
        fields.pop("raw_message", None)
        if value is None:
            return StructuredResult(value=fallback, record=self._record(agent, "structured", start, **fields, fallback=True))
        return StructuredResult(value=value, record=self._record(agent, "structured", start, **fields))

    # ------------------------------------------------------------------ choose
    def choose(
        self, messages: Sequence[ChatMessage], options: Sequence[str], *, agent: str, fallback: str
    ) -> ChoiceResult:
        """A structured enum answer; probabilities from logprobs when available (see module docstring)."""
        start = time.perf_counter()
        options = tuple(options)
        schema = create_model("Choice", choice=(Literal[options], ...))  # type: ignore[valid-type]
        value, fields = self._structured_call(messages, schema, agent=agent)
        raw_message = fields.pop("raw_message", None)
        k, smoothing = len(options), self.config.choice_smoothing
        if value is None:
            q = {option: float(option == fallback) for option in options}
            probs = {option: (1 - smoothing) * q[option] + smoothing / k for option in options}
            record = self._record(agent, "choose", start, **fields, fallback=True)
            return ChoiceResult(choice=fallback, probs=_normalise(probs), record=record)
        answer = value.choice  # type: ignore[attr-defined]
        q = _logprob_mass(raw_message, options) if raw_message is not None else None
        if q is None:
            q = {option: float(option == answer) for option in options}
        probs = _normalise({option: (1 - smoothing) * q[option] + smoothing / k for option in options})
        return ChoiceResult(choice=answer, probs=probs, record=self._record(agent, "choose", start, **fields))

    def choose_many(self, requests: Sequence[ChoiceRequest], *, agent: str) -> list[ChoiceResult]:
        """One request per choice (an HTTP API has no shared forward pass to batch)."""
        return [
            self.choose(request.messages, request.options, agent=agent, fallback=request.fallback)
            for request in requests
        ]


def _describe(exc: openai.APIError, timeout_s: float) -> str:
    """A short, class-independent description (langchain re-wraps the SDK's exception classes)."""
    if isinstance(exc, openai.APITimeoutError):
        return f"timeout after {timeout_s}s"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    return f"connection error: {exc}"


def _raw_text(message: Any) -> str:
    """The reply text, or the tool-call arguments when the answer came as a tool call."""
    calls = getattr(message, "tool_calls", None) or []
    if calls:
        return json.dumps([call.get("args") for call in calls])
    content = getattr(message, "content", "")
    return content if isinstance(content, str) else json.dumps(content)


def _normalise(probs: dict[str, float]) -> dict[str, float]:
    total = sum(probs.values())
    return {option: value / total for option, value in probs.items()}


def _logprob_mass(message: Any, options: Sequence[str]) -> dict[str, float] | None:
    """Normalised probability mass per option at the first token of the answer value, or None."""
    logprobs = (getattr(message, "response_metadata", None) or {}).get("logprobs") or {}
    tokens = logprobs.get("content") or []
    text = "".join(token.get("token", "") for token in tokens)
    match = re.search(r'"choice"\s*:\s*"', text)
    if not tokens or match is None:
        return None
    value_start, offset = match.end(), 0
    for token in tokens:
        piece = token.get("token", "")
        if offset + len(piece) > value_start:
            prefix = text[offset:value_start]  # part of this token before the value (e.g. a quote)
            mass = dict.fromkeys(options, 0.0)
            for alternative in token.get("top_logprobs") or [{"token": piece, "logprob": token.get("logprob")}]:
                candidate = alternative.get("token", "")
                logprob = alternative.get("logprob")
                if logprob is None or not candidate.startswith(prefix):
                    continue
                rest = candidate[len(prefix):]
                matches = [o for o in options if rest and (o.startswith(rest) or rest.rstrip('"').startswith(o))]
                if len(matches) == 1:
                    mass[matches[0]] += math.exp(logprob)
            total = sum(mass.values())
            return {option: value / total for option, value in mass.items()} if total > 0 else None
        offset += len(piece)
    return None
