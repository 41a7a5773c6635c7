"""Configuration of the LLM layer: backends, per-agent routing, cache, budget, prices, retries.

Switching one agent to another backend is one line under ``agents``::

    llm:
      backends:
        local: {kind: local}
        gpt: {kind: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}
      agents:
        news_analyst: gpt
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class LocalBackendConfig(BaseModel):
    """The embedded model: transformers + torch on CPU."""

    model_config = _FROZEN

    kind: Literal["local"] = Field(default="local", description="Backend discriminator.")
    model_path: str | None = Field(
        default=None, description="A .gguf file or a transformers model folder; None = embedded SmolLM2-135M-Instruct."
    )
    threads: int = Field(default=2, ge=1, le=256, description="torch intra-op threads.")
    max_new_tokens: int = Field(
        default=256, ge=1, le=4096, description="Generation cap for structured (JSON) answers."
    )
    calibrate: bool = Field(
        default=True,
        description="Subtract each option's log-likelihood under a content-free prompt before the softmax in choose.",
    )
    batch_size: int = Field(default=8, ge=1, le=256, description="Prompts per forward pass in choose_many.")
    prefix_cache_entries: int = Field(
        default=16, ge=0, le=1024,
        description="Shared prompt prefixes (e.g. each agent's system message) whose KV cache is kept and reused by choose; "
        "0 recomputes every prompt from its first token.",
    )
    min_prefix_tokens: int = Field(
        default=16, ge=1, le=4096, description="Shortest shared prefix worth caching; shorter ones are recomputed."
    )
    seed: int = Field(default=0, ge=0, description="Seed for sampled text (temperature > 0); greedy ignores it. Defaults to the scenario's seed.")
    cache_dir: str | None = Field(
        default=None, description="Where the converted GGUF is kept; None = <repo>/.cache/tradegraph/models."
    )


StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]


class OpenAIBackendConfig(BaseModel):
    """Any OpenAI-compatible chat-completions endpoint, via langchain_openai.ChatOpenAI."""

    model_config = _FROZEN

    kind: Literal["openai"] = Field(default="openai", description="Backend discriminator.")
    model: str = Field(min_length=1, description="Model name as the server knows it.")
    base_url: str | None = Field(default=None, description="Endpoint root ending in /v1; None = api.openai.com.")
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY",
        description="NAME of the environment variable holding the key (never the key). None = no key needed.",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Default sampling temperature.")
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="Per-request timeout in seconds.")
    logprobs: bool = Field(
        default=False, description="Ask for token logprobs so choose can return model probabilities."
    )
    top_logprobs: int = Field(default=5, ge=1, le=20, description="Alternatives per token when logprobs is on.")
    structured_method: StructuredMethod = Field(
        default="json_schema", description="How structured answers are requested (with_structured_output method)."
    )
    max_tokens: int = Field(default=512, ge=1, le=65536, description="Output cap (tokens) of each structured call.")
    choose_max_tokens: int = Field(
        default=48, ge=1, le=4096,
        description="Output cap (tokens) of each choose request: an answer is one option, so a server that rambles "
        "is cut off after this many tokens instead of generating its own maximum.",
    )
    choice_smoothing: float = Field(
        default=0.05,
        ge=0.0,
        lt=1.0,
        description="Without logprobs, choose gives the answer 1-s and spreads s evenly over the other options.",
    )


class VLLMServeConfig(BaseModel):
    """How to start a vLLM server as a subprocess (`vllm serve MODEL --port P ARGS`)."""

    model_config = _FROZEN

    model: str = Field(min_length=1, description="Model to serve (HF id or local path).")
    port: int = Field(default=8000, ge=1, le=65535, description="Port on 127.0.0.1.")
    args: tuple[str, ...] = Field(default=(), description="Extra command-line arguments for `vllm serve`.")
    startup_timeout_s: float = Field(default=600.0, gt=0, description="How long to wait for GET /health.")
    poll_interval_s: float = Field(default=0.5, gt=0, description="Seconds between health polls.")
    stop_timeout_s: float = Field(default=10.0, gt=0, description="Grace after SIGTERM before SIGKILL.")


class VLLMBackendConfig(BaseModel):
    """A vLLM OpenAI-compatible server: either running at ``base_url`` or started from ``serve``."""

    model_config = _FROZEN

    kind: Literal["vllm"] = Field(default="vllm", description="Backend discriminator.")
    base_url: str | None = Field(default=None, description="Root (ending in /v1) of an already-running server.")
    serve: VLLMServeConfig | None = Field(default=None, description="Start a server instead of using base_url.")
    model: str | None = Field(default=None, description="Model name for requests; default = serve.model.")
    api_key_env: str | None = Field(default=None, description="NAME of the env var with the server's key, if any.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Default sampling temperature.")
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="Per-request timeout in seconds.")
    logprobs: bool = Field(default=True, description="vLLM returns logprobs, so choose uses them by default.")
    top_logprobs: int = Field(default=5, ge=1, le=20, description="Alternatives per token when logprobs is on.")
    structured_method: StructuredMethod = Field(
        default="json_schema", description="How structured answers are requested."
    )
    max_tokens: int = Field(default=512, ge=1, le=65536, description="Output cap (tokens) of each structured call.")
    choose_max_tokens: int = Field(default=48, ge=1, le=4096, description="Output cap (tokens) of each choose request.")
    choice_smoothing: float = Field(default=0.05, ge=0.0, lt=1.0, description="See OpenAIBackendConfig.")

    @model_validator(mode="after")
    def _one_source(self) -> VLLMBackendConfig:
        if (self.base_url is None) == (self.serve is None):
            raise ValueError("give exactly one of base_url (a running server) or serve (start one)")
        if self.model is None and self.serve is None:
            raise ValueError("model is required when base_url is given")
        return self

    @property
    def request_model(self) -> str:
        """Model name sent in requests."""
        if self.model is not None:
            return self.model
        assert self.serve is not None  # guaranteed by _one_source
        return self.serve.model

    def as_openai(self, base_url: str) -> OpenAIBackendConfig:
        """The client-side settings, as an OpenAI backend config pointing at ``base_url``."""
        return OpenAIBackendConfig(
            model=self.request_model,
            base_url=base_url,
            api_key_env=self.api_key_env,
            temperature=self.temperature,
            timeout_s=self.timeout_s,
            logprobs=self.logprobs,
            top_logprobs=self.top_logprobs,
            structured_method=self.structured_method,
            max_tokens=self.max_tokens,
            choose_max_tokens=self.choose_max_tokens,
            choice_smoothing=self.choice_smoothing,
        )


BackendConfig = Annotated[
    LocalBackendConfig | OpenAIBackendConfig | VLLMBackendConfig, Field(discriminator="kind")
]


class CacheMode(StrEnum):
    """Record/replay cache behaviour."""

    OFF = "off"
    RECORD = "record"  # always call the model, store the answer
    REPLAY = "replay"  # never call the model; a miss is an error
    AUTO = "auto"  # replay on a hit, else call and record


class LLMCacheConfig(BaseModel):
    """Where and how model answers are recorded for replay."""

    model_config = _FROZEN

    mode: CacheMode = Field(default=CacheMode.OFF, description="off | record | replay | auto.")
    path: str | None = Field(
        default=None, description="SQLite file; None = <run_dir>/llm_cache.sqlite (required unless mode is off)."
    )


class BudgetConfig(BaseModel):
    """Run-wide spending limits (None = unlimited)."""

    model_config = _FROZEN

    max_tokens: int | None = Field(default=None, ge=1, description="Total tokens in + out across all agents.")
    max_usd: float | None = Field(default=None, gt=0, description="Total estimated cost in US dollars.")


class ModelPrice(BaseModel):
    """Price of one model per 1,000 tokens."""

    model_config = _FROZEN

    input_per_1k: float = Field(ge=0, description="USD per 1,000 prompt tokens.")
    output_per_1k: float = Field(ge=0, description="USD per 1,000 generated tokens.")


class RetryConfig(BaseModel):
    """Retries of failed requests (timeouts, HTTP 429/5xx/4xx, empty or unparseable replies): exponential
    backoff with a cap, and a stop after too many failed calls in a row on one backend."""

    model_config = _FROZEN

    max_attempts: int = Field(default=4, ge=1, le=20, description="Requests per call including the first.")
    base_delay_s: float = Field(default=1.0, ge=0, description="Delay before the first retry; doubles each retry.")
    max_delay_s: float = Field(default=30.0, ge=0, description="Cap on any single delay.")
    max_consecutive_failures: int = Field(
        default=6, ge=1, le=1000,
        description="Calls in a row on one backend whose retries were all exhausted before the run stops "
        "(cleanly, resumable) instead of filling the run with fallbacks; any answered request resets the count.",
    )

    def delay_s(self, retry_number: int) -> float:
        """Delay before retry ``retry_number`` (1-based)."""
        return min(self.max_delay_s, self.base_delay_s * 2 ** (retry_number - 1))


class LLMConfig(BaseModel):
    """The LLM layer's part of the scenario config."""

    model_config = _FROZEN

    backends: dict[str, BackendConfig] = Field(
        default_factory=lambda: {"local": LocalBackendConfig()},
        min_length=1,
        description="Named backends agents can use.",
    )
    default: str = Field(default="local", description="Backend used by agents not listed in `agents`.")
    agents: dict[str, str] = Field(
        default_factory=dict, description="Per-agent override: agent name -> backend name."
    )
    cache: LLMCacheConfig = Field(default_factory=LLMCacheConfig, description="Record/replay cache.")
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="Token and dollar limits.")
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Price per model name; models not listed cost 0 (e.g. local)."
    )
    retry: RetryConfig = Field(default_factory=RetryConfig, description="Retry policy for network backends.")

    @model_validator(mode="after")
    def _known_backends(self) -> LLMConfig:
        known = sorted(self.backends)
        if self.default not in self.backends:
            raise ValueError(f"llm.default: unknown backend {self.default!r}; known backends: {known}")
        for agent, backend in self.agents.items():
            if backend not in self.backends:
                raise ValueError(f"llm.agents.{agent}: unknown backend {backend!r}; known backends: {known}")
        return self

    def backend_name(self, agent: str) -> str:
        """Backend name serving ``agent``."""
        return self.agents.get(agent, self.default)

    def cache_path(self, run_dir: Path | None = None) -> Path | None:
        """Resolved cache file, or None when the cache is off."""
        if self.cache.mode is CacheMode.OFF:
            return None
        if self.cache.path is not None:
            return Path(self.cache.path)
        if run_dir is None:
            raise ValueError("llm.cache.path: required when llm.cache.mode is not off and no run directory is given")
        return Path(run_dir) / "llm_cache.sqlite"
