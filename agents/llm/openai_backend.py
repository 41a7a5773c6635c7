"""Any OpenAI-compatible chat-completions endpoint, through ``langchain_openai.ChatOpenAI``.

Retries are ours (``max_retries=0`` on the client) so each one is recorded. Every way a server
can fail a request is retried with capped exponential backoff (``RetryConfig``; the sleep
function is injectable): timeouts and connection errors, HTTP 429, 5xx and 4xx (other than the
four below), an unparseable body (an HTML error page, truncated JSON), a reply without choices
(``"choices": []``, which makes langchain raise ``IndexError``) and, for ``text``, a reply with
null content. 401/403 and 404 fail fast with an ``LLMConfigError`` naming the config field to fix.

A reply that arrived but is unusable (cut off at the length limit, where the SDK's parser raises
``LengthFinishReasonError``; filtered; not valid for the schema) gets one repair retry. When
retries are exhausted, every call returns its fallback, recorded with the error: ``structured``
and ``choose`` their declared fallback, ``text`` an empty string. When one backend has had
``max_consecutive_failures`` calls in a row with their retries exhausted, the next one raises
``BackendUnavailableError`` instead, which stops the run cleanly (resumable) naming the backend
and its last errors.

``structured`` asks via ``with_structured_output(<JSON schema>, method=..., include_raw=True)``
with ``max_tokens`` as the output cap, and validates with pydantic itself (so a bad answer never
raises inside the SDK and the raw text is kept).

``choose`` is a structured answer ``{"choice": <enum of options>}`` capped at ``choose_max_tokens``.
Probabilities: with ``logprobs`` on and returned by the server, ``q`` is the probability mass of
the top alternatives at the first token of the answer value, attributed to the option each token
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
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal

import openai
from pydantic import BaseModel, ValidationError, create_model

from env.errors import BackendUnavailableError, LLMConfigError

from .base import CallRecord, ChatMessage, ChoiceRequest, ChoiceResult, StructuredResult, TextResult
from .config import OpenAIBackendConfig, RetryConfig, StructuredMethod

log = logging.getLogger(__name__)

# Any status error not caught before these (auth, unknown model) is retried too: 400s, 409s and 422s
# from real servers are often transient (a replica restarting, a proxy in front of it).
_RETRYABLE = (openai.APIStatusError, openai.APIConnectionError, openai.APIResponseValidationError)
_UNUSABLE_ANSWER = (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError)
_REPAIR_INSTRUCTION = "That reply was not valid: {error}. Reply again with only the corrected JSON object."
_CHOOSE_INSTRUCTION = "Answer with exactly one of: {options}. Reply with that answer only."
_CHOOSE_REPAIR_INSTRUCTION = "That reply named none of the options. Reply with exactly one of: {options}."
_JSON_MODE_INSTRUCTION = "Reply with one JSON object that validates against this JSON schema:\n{schema}"


class _Failure(Exception):
    """Internal: retries exhausted (carries the attempts made and the last error)."""

    def __init__(self, attempts: int, error: str) -> None:
        super().__init__(error)
        self.attempts = attempts
        self.error = error


class _UnusableAnswer(Exception):
    """Internal: the server answered, but the SDK refused the answer (cut at the length limit, filtered)."""

    def __init__(self, attempts: int, error: str, raw: str, tokens_in: int, tokens_out: int) -> None:
        super().__init__(error)
        self.attempts = attempts
        self.error = error
        self.raw = raw
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out


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
        # (max_tokens, logprobs) -> a ChatOpenAI sending them (bind() is lost by with_structured_output)
        self._capped: dict[tuple[int, bool], Any] = {}
        self._no_logprobs = False  # set when the server ignored a logprobs request
        self._lock = threading.Lock()  # parallel analyst nodes share this backend
        self._failures_in_a_row = 0
        self._recent_errors: deque[str] = deque(maxlen=3)

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

    def _make_chat(self, max_tokens: int | None = None, logprobs: bool | None = None) -> Any:
        from langchain_openai import ChatOpenAI

        options: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
        if self.config.logprobs if logprobs is None else logprobs:
            options.update(logprobs=True, top_logprobs=self.config.top_logprobs)
        return ChatOpenAI(
            model=self.config.model,
            base_url=self.config.base_url,
            api_key=self._api_key,
            temperature=self.config.temperature,
            timeout=self.config.timeout_s,
            max_retries=0,
            use_responses_api=False,
            http_client=openai.DefaultHttpxClient(event_hooks={"response": [_check_completion_body]}),
            **options,
        )

    def close(self) -> None:
        """Nothing to release (the HTTP client closes with the process)."""

    def _scrub(self, text: str) -> str:
        # Servers sometimes echo the key in error messages; never let it into records or logs.
        return text.replace(self._api_key, "***") if self._api_key else text

    # ------------------------------------------------------------------ transport
    def _capped_chat(self, max_tokens: int, *, logprobs: bool | None = None) -> Any:
        """A chat model that sends ``max_tokens`` (and logprobs, default: as configured) with every request."""
        key = (max_tokens, self.config.logprobs if logprobs is None else logprobs)
        with self._lock:
            if key not in self._capped:
                self._capped[key] = self._make_chat(*key)
            return self._capped[key]

    def _answered(self) -> None:
        with self._lock:
            self._failures_in_a_row = 0
            self._recent_errors.clear()

    def _exhausted(self, agent: str, error: str) -> None:
        """Count a call whose retries were all used; past the cap, stop the run (resumable)."""
        with self._lock:
            self._failures_in_a_row += 1
            self._recent_errors.append(f"{agent}: {error}")
            failures, errors = self._failures_in_a_row, list(self._recent_errors)
        if failures >= self.retry.max_consecutive_failures:
            log.error("llm %s: %d calls in a row failed; stopping the run", self.name, failures)
            raise BackendUnavailableError(self.name, failures, errors)

    def _invoke(
        self, runnable: Any, messages: Sequence[ChatMessage], *, agent: str, need_content: bool = False
    ) -> tuple[Any, int]:
        """Invoke with retries; returns (output, attempts).

        Raises ``LLMConfigError`` (auth, unknown model), ``_UnusableAnswer`` (an answer the SDK
        refused), ``_Failure`` (retries exhausted) or ``BackendUnavailableError`` (too many
        exhausted calls in a row). ``need_content``: a reply with null or empty content is a failure.
        """
        with self._lock:  # once stopped, parallel callers stop too instead of sending more requests
            if self._failures_in_a_row >= self.retry.max_consecutive_failures:
                raise BackendUnavailableError(self.name, self._failures_in_a_row, list(self._recent_errors))
        payload = [(message.role, message.content) for message in messages]
        last = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                output = runnable.invoke(payload)
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
            except _UNUSABLE_ANSWER as exc:
                self._answered()
                raw, tokens_in, tokens_out = _refused_completion(exc)
                raise _UnusableAnswer(attempt, _describe_refusal(exc), raw, tokens_in, tokens_out) from None
            except _RETRYABLE as exc:
                last = self._scrub(_describe(exc, self.config.timeout_s))
            else:
                if not need_content or _has_content(output):
                    self._answered()
                    return output, attempt
                last = "reply with null or empty content"
            if attempt < self.retry.max_attempts:
                delay = self.retry.delay_s(attempt)
                log.warning(
                    "llm %s agent=%s attempt %d/%d failed (%s); retrying in %.2fs",
                    self.name, agent, attempt, self.retry.max_attempts, last, delay,
                )
                self._sleep(delay)
        log.error("llm %s agent=%s gave up after %d attempts: %s", self.name, agent, self.retry.max_attempts, last)
        self._exhausted(agent, last)
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
        """Free text; an empty string, recorded as a fallback, when retries are exhausted."""
        start = time.perf_counter()
        runnable = self._chat.bind(max_tokens=max_tokens, temperature=temperature)
        try:
            message, attempts = self._invoke(runnable, messages, agent=agent, need_content=True)
        except _Failure as failure:
            record = self._record(
                agent, "text", start, tokens_in=0, tokens_out=0, attempts=failure.attempts, error=failure.error,
                fallback=True, fallback_reason=f"retries exhausted ({failure.attempts} attempts)", server_failure=True,
            )
            return TextResult(text="", record=record)
        tokens_in, tokens_out = self._usage(message)
        content = message.content if isinstance(message.content, str) else json.dumps(message.content)
        record = self._record(
            agent, "text", start, tokens_in=tokens_in, tokens_out=tokens_out, raw_output=content, attempts=attempts
        )
        return TextResult(text=content, record=record)

    # ------------------------------------------------------------------ structured
    def _structured_call(
        self, messages: Sequence[ChatMessage], schema: type[BaseModel], *, agent: str, max_tokens: int,
        method: StructuredMethod | None = None, logprobs: bool | None = None,
    ) -> tuple[BaseModel | None, dict[str, Any]]:
        """One structured request with a repair retry. Returns (value or None, record fields)."""
        method = method or self.config.structured_method
        json_schema = schema.model_json_schema()
        conversation = list(messages)
        if method == "json_mode":
            instruction = _JSON_MODE_INSTRUCTION.format(schema=json.dumps(json_schema))
            conversation = [ChatMessage(role="system", content=instruction), *conversation]
        runnable = self._capped_chat(max_tokens, logprobs=logprobs).with_structured_output(
            json_schema, method=method, include_raw=True
        )
        fields: dict[str, Any] = {"tokens_in": 0, "tokens_out": 0, "attempts": 0, "raw_output": None, "error": None}
        for round_ in (1, 2):
            try:
                output, attempts = self._invoke(runnable, conversation, agent=agent)
                raw_message = output["raw"]
                tokens_in, tokens_out = self._usage(raw_message)
                raw = _raw_text(raw_message)
                value, error = _validated(schema, output)
            except _Failure as failure:
                fields["attempts"] += failure.attempts
                fields.update(
                    error=failure.error, fallback_reason=f"retries exhausted ({failure.attempts} attempts)",
                    server_failure=True,
                )
                return None, fields
            except _UnusableAnswer as refused:
                attempts, raw, error, value = refused.attempts, refused.raw, refused.error, None
                tokens_in, tokens_out = refused.tokens_in, refused.tokens_out
            fields["attempts"] += attempts
            fields["tokens_in"] += tokens_in
            fields["tokens_out"] += tokens_out
            fields["raw_output"] = raw
            if value is not None:
                return value, {**fields, "raw_message": raw_message}
            fields["error"] = self._scrub(error.splitlines()[0][:300])
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
        value, fields = self._structured_call(messages, schema, agent=agent, max_tokens=self.config.max_tokens)
        fields.pop("raw_message", None)
        if value is None:
            return StructuredResult(value=fallback, record=self._record(agent, "structured", start, **fields, fallback=True))
        return StructuredResult(value=value, record=self._record(agent, "structured", start, **fields))

    # ------------------------------------------------------------------ choose
    def choose_path(self) -> str:
        """The path ``choose`` takes now: the configured one, or with ``auto`` the best the capabilities allow."""
        if self.config.choose_method != "auto":
            return self.config.choose_method
        caps = self.config.resolved_capabilities
        if caps.logprobs and not self._no_logprobs:
            return "logprobs"
        for path, supported in (("json_schema", caps.json_schema), ("function_calling", caps.tools), ("json_mode", caps.json_mode)):
            if supported:
                return path
        return "text"

    def _logprobs_missing(self) -> None:
        with self._lock:
            first = not self._no_logprobs
            self._no_logprobs = True
        if first:
            log.warning("llm %s: asked for logprobs and got none; choose stops asking for them", self.name)

    def choose(
        self, messages: Sequence[ChatMessage], options: Sequence[str], *, agent: str, fallback: str
    ) -> ChoiceResult:
        """One option by ``choose_path()``; probabilities from logprobs when available (see module docstring)."""
        start = time.perf_counter()
        options = tuple(options)
        path = self.choose_path()
        # logprobs: over a json_schema answer when the server honours schemas (the mass at the value's
        # first token), else over a free-text answer (the mass at its first token).
        free_text = path == "text" or (path == "logprobs" and not self.config.resolved_capabilities.json_schema)
        if free_text:
            answer, q, fields = self._free_text_choice(messages, options, agent=agent, logprobs=path == "logprobs")
        else:
            schema = create_model("Choice", choice=(Literal[options], ...))  # type: ignore[valid-type]
            method = "json_schema" if path == "logprobs" else path
            value, fields = self._structured_call(
                messages, schema, agent=agent, max_tokens=self.config.choose_max_tokens, method=method,  # type: ignore[arg-type]
                logprobs=True if path == "logprobs" else None,
            )
            raw_message = fields.pop("raw_message", None)
            answer = None if value is None else value.choice  # type: ignore[attr-defined]
            q = _logprob_mass(raw_message, options) if raw_message is not None and answer is not None else None
        if path == "logprobs" and answer is not None and q is None:
            self._logprobs_missing()
            path = "text" if free_text else "json_schema"
        k, smoothing = len(options), self.config.choice_smoothing
        if answer is None:
            q = {option: float(option == fallback) for option in options}
            probs = {option: (1 - smoothing) * q[option] + smoothing / k for option in options}
            record = self._record(agent, "choose", start, **fields, path=path, fallback=True)
            return ChoiceResult(choice=fallback, probs=_normalise(probs), record=record)
        if q is None:
            q = {option: float(option == answer) for option in options}
        probs = _normalise({option: (1 - smoothing) * q[option] + smoothing / k for option in options})
        record = self._record(agent, "choose", start, **fields, path=path)
        return ChoiceResult(choice=answer, probs=probs, record=record)

    def _free_text_choice(
        self, messages: Sequence[ChatMessage], options: tuple[str, ...], *, agent: str, logprobs: bool
    ) -> tuple[str | None, dict[str, float] | None, dict[str, Any]]:
        """Ask for the option as plain text (logprobs at its first token if asked), one repair retry.

        Returns (answer or None, per-option mass from logprobs or None, record fields).
        """
        listed = ", ".join(options)
        conversation = [*messages, ChatMessage(role="user", content=_CHOOSE_INSTRUCTION.format(options=listed))]
        runnable = self._capped_chat(self.config.choose_max_tokens, logprobs=logprobs)
        fields: dict[str, Any] = {"tokens_in": 0, "tokens_out": 0, "attempts": 0, "raw_output": None, "error": None}
        for round_ in (1, 2):
            try:
                message, attempts = self._invoke(runnable, conversation, agent=agent, need_content=True)
            except _Failure as failure:
                fields["attempts"] += failure.attempts
                fields.update(
                    error=failure.error, fallback_reason=f"retries exhausted ({failure.attempts} attempts)",
                    server_failure=True,
                )
                return None, None, fields
            tokens_in, tokens_out = self._usage(message)
            raw = _raw_text(message)
            fields.update(attempts=fields["attempts"] + attempts, raw_output=raw)
            fields["tokens_in"] += tokens_in
            fields["tokens_out"] += tokens_out
            q = _first_token_mass(message, options) if logprobs else None
            if q is not None:
                return max(options, key=lambda option: q[option]), q, fields
            answer = parse_option(raw, options)
            if answer is not None:
                return answer, None, fields
            fields["error"] = f"none of the options in the reply {self._scrub(raw[:80])!r}"
            if round_ == 1:
                conversation = [
                    *conversation,
                    ChatMessage(role="assistant", content=raw),
                    ChatMessage(role="user", content=_CHOOSE_REPAIR_INSTRUCTION.format(options=listed)),
                ]
        fields["fallback_reason"] = "no option in the free-text answer after one repair retry"
        return None, None, fields

    def choose_many(self, requests: Sequence[ChoiceRequest], *, agent: str) -> list[ChoiceResult]:
        """One request per choice (an HTTP API has no shared forward pass to batch)."""
        return [
            self.choose(request.messages, request.options, agent=agent, fallback=request.fallback)
            for request in requests
        ]


def _check_completion_body(response: Any) -> None:
    """httpx response hook: a 2xx chat completion must be a JSON object with at least one choice.

    Otherwise the SDK or langchain fail later with whatever their code trips on (``JSONDecodeError``
    on an HTML page or truncated JSON, ``AttributeError`` on a text body, ``IndexError`` on
    ``"choices": []``). Raising an ``openai.APIResponseValidationError`` here makes every one of them
    the same retryable error; the SDK passes its own errors through unchanged.
    """
    if not response.is_success or not response.request.url.path.endswith("/chat/completions"):
        return
    response.read()
    try:
        body = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        snippet = response.content[:60].decode("utf-8", "replace")
        raise openai.APIResponseValidationError(
            response, None, message=f"unparseable response body ({type(exc).__name__}; starts {snippet!r})"
        ) from None
    if not isinstance(body, dict) or not body.get("choices"):
        raise openai.APIResponseValidationError(response, body, message='reply without choices ("choices": [])')


def _describe(exc: openai.APIError, timeout_s: float) -> str:
    """A short, class-independent description (langchain re-wraps the SDK's exception classes)."""
    if isinstance(exc, openai.APITimeoutError):
        return f"timeout after {timeout_s}s"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    if isinstance(exc, openai.APIResponseValidationError):
        return exc.message
    return f"connection error: {exc}"


def _validated(schema: type[BaseModel], output: dict[str, Any]) -> tuple[BaseModel | None, str]:
    """(the validated answer, "") or (None, why not) from a ``with_structured_output(include_raw=True)`` output."""
    parsed, error = output.get("parsed"), output.get("parsing_error")
    if error is not None:
        return None, error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    if parsed is None:
        return None, "no structured answer in the reply"
    try:
        return schema.model_validate(parsed), ""
    except ValidationError as exc:
        return None, f"ValidationError: {exc}"


def _describe_refusal(exc: openai.OpenAIError) -> str:
    if isinstance(exc, openai.LengthFinishReasonError):
        return "answer cut off at the length limit (max_tokens) before it was complete"
    return "answer withheld by the server's content filter"


def _refused_completion(exc: openai.OpenAIError) -> tuple[str, int, int]:
    """(raw text, tokens in, tokens out) of the completion the SDK refused to parse."""
    completion = getattr(exc, "completion", None)
    choices = getattr(completion, "choices", None) or []
    raw = (getattr(choices[0].message, "content", None) or "") if choices else ""
    usage = getattr(completion, "usage", None)
    return raw, int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


def _has_content(message: Any) -> bool:
    content = getattr(message, "content", None)
    return bool(content) or bool(getattr(message, "tool_calls", None))


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


def parse_option(text: str, options: Sequence[str]) -> str | None:
    """The option named first in ``text`` (whole words, any case; the longer one when two start together)."""
    lowered = text.lower()
    best: tuple[int, int, str] | None = None
    for option in options:
        match = re.search(rf"(?<![a-z0-9]){re.escape(option.lower())}(?![a-z0-9])", lowered)
        if match is not None:
            candidate = (match.start(), -len(option), option)
            best = candidate if best is None or candidate < best else best
    return None if best is None else best[2]


def _first_token_mass(message: Any, options: Sequence[str]) -> dict[str, float] | None:
    """Normalised probability mass per option at the first non-blank generated token, or None
    without logprobs. Each alternative counts for the one option it starts (case and quotes aside)."""
    logprobs = (getattr(message, "response_metadata", None) or {}).get("logprobs") or {}
    first = next((token for token in logprobs.get("content") or [] if token.get("token", "").strip()), None)
    if first is None:
        return None
    mass = dict.fromkeys(options, 0.0)
    for alternative in first.get("top_logprobs") or [first]:
        piece = alternative.get("token", "").strip().strip("\"'").lower()
        logprob = alternative.get("logprob")
        matches = [option for option in options if piece and option.lower().startswith(piece)]
        if logprob is not None and len(matches) == 1:
            mass[matches[0]] += math.exp(logprob)
    total = sum(mass.values())
    return {option: value / total for option, value in mass.items()} if total > 0 else None


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
