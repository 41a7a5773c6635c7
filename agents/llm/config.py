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

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class LocalBackendConfig(BaseModel):
    """The embedded model on the CPU: CTranslate2 by default, or transformers + torch eager."""

    model_config = _FROZEN

    kind: Literal["local"] = Field(default="local", description="Backend discriminator.")
    model_path: str | None = Field(
        default=None, description="A .gguf file or a transformers model folder; None = embedded SmolLM2-135M-Instruct."
    )
    threads: int = Field(default=2, ge=1, le=256, description="Intra-op threads of the runtime (torch or CTranslate2).")
    # Always in the dump (so in every run id and config.json): the default changed from torch to
    # ctranslate2, and a config.json written before that, without the field, must not be read as ct2's.
    runtime: Literal["torch", "ctranslate2"] = Field(
        default="ctranslate2",
        description="What computes the answers: CTranslate2 (the default: the same model converted once on first use, its "
        "float32 log-probabilities equal torch's to 1e-3 and ~1.6x faster on 2 cores, see agents/llm/ct2_runtime.py), or torch "
        "eager (the first releases' runtime). Hidden-state features and FLAG-Trader's policy always run on torch.",
    )
    # exclude_if: at its default a field added after the first release is left out of the dump, so the
    # config hash in every earlier run id (and the config.json a resume compares) stays what it was.
    compute_type: Literal["float32", "int8"] = Field(
        default="float32",
        exclude_if=lambda value: value == "float32",
        description="CTranslate2 weights: float32 (the torch model's log-probabilities to 1e-3) or int8 (faster; "
        "quantised, so calibrated probabilities move, by up to ~0.25 measured). Only with runtime: ctranslate2.",
    )
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
    training_cutoff: date | None = Field(
        default=None,
        description="Last date of the model's training data; a run testing on earlier real dates warns (contamination).",
    )

    @model_validator(mode="after")
    def _compute_type_needs_ctranslate2(self) -> "LocalBackendConfig":
        if self.runtime == "torch" and self.compute_type != "float32":
            raise ValueError(
                f"compute_type {self.compute_type!r} applies to runtime: ctranslate2 only (torch runs float32); "
                "set runtime: ctranslate2 or drop compute_type"
            )
        return self


StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]
ChooseMethod = Literal["auto", "logprobs", "json_schema", "function_calling", "json_mode", "text"]
Provider = Literal["openai", "deepseek", "vllm", "ollama", "llamacpp", "transformers"]
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


class Capabilities(BaseModel):
    """What an OpenAI-compatible server honours; ``choose`` uses the best of these (``run.py doctor`` probes them)."""

    model_config = _FROZEN

    logprobs: bool = Field(description="Returns token logprobs (with top alternatives) when asked.")
    json_schema: bool = Field(description="Constrains the answer to response_format json_schema.")
    tools: bool = Field(description="Answers a forced tool call with tool_calls.")
    json_mode: bool = Field(description="Honours response_format json_object.")


_ALL = {"logprobs": True, "json_schema": True, "tools": True, "json_mode": True}
# Defaults per provider: where it listens, which key it needs, what it honours (from the providers'
# documentation; `transformers serve` as measured, FACTS.md). Any field given in the config wins.
PROVIDER_PRESETS: dict[str, dict[str, object]] = {
    "openai": {"base_url": None, "api_key_env": "OPENAI_API_KEY", "capabilities": _ALL},
    "deepseek": {
        "base_url": "https://api.deepseek.com/v1", "api_key_env": "DEEPSEEK_API_KEY", "structured_method": "json_mode",
        "capabilities": {**_ALL, "json_schema": False},
    },
    "vllm": {"base_url": "http://127.0.0.1:8000/v1", "api_key_env": None, "capabilities": _ALL},
    "ollama": {
        "base_url": "http://127.0.0.1:11434/v1", "api_key_env": None, "capabilities": {**_ALL, "logprobs": False},
    },
    "llamacpp": {"base_url": "http://127.0.0.1:8080/v1", "api_key_env": None, "capabilities": _ALL},
    "transformers": {
        "base_url": "http://127.0.0.1:8000/v1", "api_key_env": None, "structured_method": "json_mode",
        "capabilities": {"logprobs": False, "json_schema": False, "tools": False, "json_mode": False},
    },
}


def is_local_url(base_url: str | None) -> bool:
    """True for an endpoint on this machine (such servers need no key by default)."""
    return base_url is not None and urlsplit(base_url).hostname in _LOCAL_HOSTS


class OpenAIBackendConfig(BaseModel):
    """Any OpenAI-compatible chat-completions endpoint, via langchain_openai.ChatOpenAI."""

    model_config = _FROZEN

    kind: Literal["openai"] = Field(default="openai", description="Backend discriminator.")
    provider: Provider | None = Field(
        default=None,
        description="Preset that fills base_url, api_key_env, structured_method and capabilities when they are not "
        "given: openai, deepseek, vllm, ollama, llamacpp or transformers (`transformers serve`).",
    )
    model: str = Field(min_length=1, description="Model name as the server knows it.")
    base_url: str | None = Field(default=None, description="Endpoint root ending in /v1; None = api.openai.com.")
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY",
        description="NAME of the environment variable holding the key (never the key). None = no key needed. "
        "Default: the provider's, else none for a base_url on this machine, else OPENAI_API_KEY.",
    )
    capabilities: Capabilities | None = Field(
        default=None,
        description="What the server honours; None = the provider's preset, else everything (logprobs as asked).",
    )
    choose_method: ChooseMethod = Field(
        default="auto",
        description="How choose asks: auto picks the best the capabilities allow (logprobs over the options, then a "
        "json_schema, tool calls, json mode, and parsing the option out of free text as the last resort).",
    )
    training_cutoff: date | None = Field(
        default=None,
        description="Last date of the model's training data; a run testing on earlier dates warns (contamination).",
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

    @model_validator(mode="before")
    @classmethod
    def _provider_defaults(cls, raw: object) -> object:
        if not isinstance(raw, dict):
            return raw
        preset = PROVIDER_PRESETS.get(str(raw.get("provider")), {})
        filled = {**{k: v for k, v in preset.items() if k not in raw}, **raw}
        if "api_key_env" not in filled and is_local_url(filled.get("base_url")):
            filled["api_key_env"] = None
        return filled

    @property
    def resolved_capabilities(self) -> Capabilities:
        """The declared capabilities, or (no provider, none declared) everything, logprobs only if asked."""
        if self.capabilities is not None:
            return self.capabilities
        return Capabilities(logprobs=self.logprobs, json_schema=True, tools=True, json_mode=True)


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
    choose_method: ChooseMethod = Field(default="auto", description="See OpenAIBackendConfig.")
    training_cutoff: date | None = Field(default=None, description="See OpenAIBackendConfig.")

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
            choose_method=self.choose_method,
            training_cutoff=self.training_cutoff,
            capabilities=Capabilities(logprobs=self.logprobs, json_schema=True, tools=True, json_mode=True),
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
