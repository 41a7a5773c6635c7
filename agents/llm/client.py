"""``LLMClient``: the ``LLM`` every agent gets. Adds the record/replay cache, cost and budget
around a backend that is created only on the first cache miss (so a replayed run never
loads the model or opens a connection)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from env.errors import LLMError

from .accounting import Accounting
from .base import (
    CallRecord,
    ChatMessage,
    ChoiceRequest,
    ChoiceResult,
    StructuredResult,
    TextResult,
    validate_options,
)
from .cache import LLMCache, cache_key
from .config import BackendConfig, CacheMode, LocalBackendConfig, ModelPrice

R = TypeVar("R", TextResult, StructuredResult, ChoiceResult)


class Backend(Protocol):
    """What a provider implements (the ``LLM`` calls, without cache or accounting)."""

    kind: str
    model_name: str

    def text(self, messages: Sequence[ChatMessage], *, agent: str, max_tokens: int, temperature: float) -> TextResult: ...
    def structured(
        self, messages: Sequence[ChatMessage], schema: type[BaseModel], *, agent: str, fallback: BaseModel
    ) -> StructuredResult: ...
    def choose_many(self, requests: Sequence[ChoiceRequest], *, agent: str) -> list[ChoiceResult]: ...
    def close(self) -> None: ...


def backend_identity(config: BackendConfig) -> dict[str, Any]:
    """What identifies a backend's answers in cache keys: kind, model and output-affecting settings."""
    if isinstance(config, LocalBackendConfig):
        from .local import local_model_id  # light: no torch at import

        params: dict[str, Any] = {"calibrate": config.calibrate, "max_new_tokens": config.max_new_tokens, "seed": config.seed}
        if config.runtime != "torch":
            # Another runtime's numbers differ in the last digits: its answers are its own. (torch adds
            # nothing, so the keys of every earlier recording stay valid.)
            params.update(runtime=config.runtime, compute_type=config.compute_type)
        return {"backend": "local", "model": local_model_id(config), "params": params}
    model = config.request_model if config.kind == "vllm" else config.model  # type: ignore[union-attr]
    return {
        "backend": config.kind,
        "model": model,
        "params": {
            "temperature": config.temperature,
            "structured_method": config.structured_method,
            "logprobs": config.logprobs,
            "top_logprobs": config.top_logprobs if config.logprobs else None,
            "max_tokens": config.max_tokens,
            "choose_max_tokens": config.choose_max_tokens,
            "choose_method": config.choose_method,
            "choice_smoothing": config.choice_smoothing,
        },
    }


def _messages(messages: Sequence[ChatMessage]) -> list[list[str]]:
    return [[message.role, message.content] for message in messages]


def _preview(messages: Sequence[ChatMessage], limit: int = 80) -> str:
    last = next((m.content for m in reversed(messages) if m.role == "user"), messages[-1].content if messages else "")
    flat = " ".join(last.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class LLMClient:
    """Implements ``LLM`` for one backend, with cache, accounting and cost."""

    def __init__(
        self,
        *,
        backend_name: str,
        config: BackendConfig,
        backend_factory: Callable[[], Backend],
        cache: LLMCache | None = None,
        accounting: Accounting | None = None,
        prices: dict[str, ModelPrice] | None = None,
    ) -> None:
        self.backend_name = backend_name
        self.config = config
        self.identity = backend_identity(config)
        self.cache = cache
        self.accounting = accounting
        self.prices = dict(prices or {})
        self._factory = backend_factory
        self._backend: Backend | None = None
        self.model_calls = 0  # backend invocations (0 after a fully replayed run)

    def __repr__(self) -> str:
        return f"LLMClient(backend={self.backend_name!r}, model={self.identity['model']!r}, cache={self.cache!r})"

    @property
    def backend(self) -> Backend:
        """The backend, created on first use."""
        if self._backend is None:
            self._backend = self._factory()
        return self._backend

    # ------------------------------------------------------------------ plumbing
    def _priced(self, result: R) -> R:
        record = result.record
        price = self.prices.get(record.model)
        if price is None:
            return result
        cost = record.tokens_in / 1000 * price.input_per_1k + record.tokens_out / 1000 * price.output_per_1k
        return result.model_copy(update={"record": record.model_copy(update={"cost_usd": cost})})

    @staticmethod
    def _as_hit(result: R, agent: str, latency_s: float) -> R:
        record = result.record.model_copy(
            update={"agent": agent, "cache_hit": True, "latency_s": latency_s, "cost_usd": 0.0}
        )
        return result.model_copy(update={"record": record})

    def _lookup(self, request: dict[str, Any], agent: str, decode: Callable[[dict[str, Any]], R]) -> R | None:
        if self.cache is None or self.cache.mode is CacheMode.RECORD:
            return None
        start = time.perf_counter()
        stored = self.cache.get(cache_key(request))
        if stored is not None:
            return self._as_hit(decode(stored), agent, time.perf_counter() - start)
        if self.cache.mode is CacheMode.REPLAY:
            raise LLMError(
                f"replay miss: agent {agent!r} made a {request['call']} call with no recorded answer "
                f"(backend {self.backend_name!r}, prompt {_preview_from(request)!r}); "
                "record it first with llm.cache.mode=record or auto"
            )
        return None

    def _store(self, request: dict[str, Any], agent: str, result: TextResult | StructuredResult | ChoiceResult) -> None:
        if self.cache is not None and not result.record.server_failure:
            self.cache.put(
                cache_key(request), kind=request["call"], agent=agent, request=request,
                result=result.model_dump(mode="json"),
            )

    def _account(self, record: CallRecord, result: object) -> None:
        if self.accounting is not None:
            self.accounting.add(record, result)

    def _run(self, request: dict[str, Any], agent: str, call: Callable[[], R], decode: Callable[[dict[str, Any]], R]) -> R:
        hit = self._lookup(request, agent, decode)
        if hit is not None:
            self._account(hit.record, hit)
            return hit
        if self.accounting is not None:
            self.accounting.check(agent)
        self.model_calls += 1
        result = self._priced(call())
        self._store(request, agent, result)
        self._account(result.record, result)
        return result

    # ------------------------------------------------------------------ LLM
    def text(
        self, messages: Sequence[ChatMessage], *, agent: str, max_tokens: int = 128, temperature: float = 0.0
    ) -> TextResult:
        """Free text (see ``LLM.text``)."""
        messages = list(messages)
        request = {
            **self.identity, "call": "text", "messages": _messages(messages),
            "max_tokens": max_tokens, "temperature": temperature,
        }
        return self._run(
            request, agent,
            lambda: self.backend.text(messages, agent=agent, max_tokens=max_tokens, temperature=temperature),
            TextResult.model_validate,
        )

    def structured(
        self, messages: Sequence[ChatMessage], schema: type[BaseModel], *, agent: str, fallback: BaseModel
    ) -> StructuredResult:
        """A validated ``schema`` instance or the recorded fallback (see ``LLM.structured``)."""
        if not isinstance(fallback, schema):
            raise TypeError(f"fallback must be an instance of {schema.__name__}, got {type(fallback).__name__}")
        messages = list(messages)
        request = {
            **self.identity, "call": "structured", "messages": _messages(messages),
            "schema": schema.model_json_schema(), "fallback": fallback.model_dump(mode="json"),
        }

        def decode(stored: dict[str, Any]) -> StructuredResult:
            return StructuredResult(
                value=schema.model_validate(stored["value"]), record=CallRecord.model_validate(stored["record"])
            )

        return self._run(
            request, agent, lambda: self.backend.structured(messages, schema, agent=agent, fallback=fallback), decode
        )

    def choose(
        self, messages: Sequence[ChatMessage], options: Sequence[str], *, agent: str, fallback: str
    ) -> ChoiceResult:
        """One option with probabilities (see ``LLM.choose``)."""
        return self.choose_many(
            [ChoiceRequest(messages=tuple(messages), options=tuple(options), fallback=fallback)], agent=agent
        )[0]

    def _choice_request(self, request: ChoiceRequest) -> dict[str, Any]:
        return {
            **self.identity, "call": "choose", "messages": _messages(request.messages),
            "options": list(request.options), "fallback": request.fallback,
        }

    def choose_many(self, requests: Sequence[ChoiceRequest], *, agent: str) -> list[ChoiceResult]:
        """Cache hits are served directly; all misses go to the backend in one batch."""
        for request in requests:
            validate_options(request.options, request.fallback)
        keyed = [self._choice_request(request) for request in requests]
        results: list[ChoiceResult | None] = [
            self._lookup(key, agent, ChoiceResult.model_validate) for key in keyed
        ]
        for result in results:
            if result is not None:
                self._account(result.record, result)
        missing = [i for i, result in enumerate(results) if result is None]
        if missing:
            if self.accounting is not None:
                self.accounting.check(agent)
            self.model_calls += 1
            fresh = self.backend.choose_many([requests[i] for i in missing], agent=agent)
            priced = [self._priced(result) for result in fresh]
            for i, result in zip(missing, priced):
                results[i] = result
                self._store(keyed[i], agent, result)
            for result in priced:
                self._account(result.record, result)
        return [result for result in results if result is not None]

    def close(self) -> None:
        """Nothing owned here: backends belong to the pool that created them."""


def _preview_from(request: dict[str, Any]) -> str:
    return _preview([ChatMessage(role=role, content=content) for role, content in request["messages"]])
