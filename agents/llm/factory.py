"""Build ``LLM`` clients from config. Providers are imported only when a backend is created."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from env.errors import ConfigError

from .accounting import Accounting
from .cache import LLMCache
from .client import Backend, LLMClient
from .config import CacheMode, LLMConfig, LocalBackendConfig, OpenAIBackendConfig, VLLMBackendConfig


class LLMPool:
    """The backends of one run, created on first use and shared by all agents.

    Sharing matters: one local model in memory and one vLLM server, however many agents use
    them. ``close()`` (or leaving the ``with`` block) stops servers this pool started.
    """

    def __init__(self, config: LLMConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        self._backends: dict[str, Backend] = {}
        # Parallel analyst nodes ask for their backend at the same moment: without the lock each got
        # a backend of its own (and its own failure count) on the first session.
        self._lock = threading.Lock()

    def backend(self, name: str) -> Backend:
        """The backend called ``name`` in ``llm.backends``, created on first call (once, whatever the threads)."""
        with self._lock:
            if name not in self._backends:
                self._backends[name] = self._create(name)
            return self._backends[name]

    def created(self) -> list[str]:
        """Names of backends created so far (a replayed run creates none)."""
        return list(self._backends)

    def _create(self, name: str) -> Backend:
        try:
            config = self.config.backends[name]
        except KeyError:
            raise ConfigError(f"llm.backends: no backend named {name!r}; known: {sorted(self.config.backends)}") from None
        if isinstance(config, LocalBackendConfig):
            from .local import LocalBackend

            return LocalBackend(config)
        if isinstance(config, OpenAIBackendConfig):
            from .openai_backend import OpenAIBackend

            return OpenAIBackend(config, name=name, retry=self.config.retry, sleep=self._sleep)
        if isinstance(config, VLLMBackendConfig):
            from .vllm_backend import VLLMBackend

            return VLLMBackend(config, name=name, retry=self.config.retry, sleep=self._sleep)
        raise ConfigError(f"llm.backends.{name}.kind: unsupported backend config {type(config).__name__}")

    def close(self) -> None:
        """Close every backend (stops vLLM servers this pool started)."""
        backends, self._backends = self._backends, {}
        for backend in backends.values():
            backend.close()

    def __enter__(self) -> LLMPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_llm(
    config: LLMConfig,
    agent: str,
    *,
    cache: LLMCache | None = None,
    accounting: Accounting | None = None,
    pool: LLMPool | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> LLMClient:
    """The ``LLM`` for ``agent``: its backend from ``config.agents`` (else ``config.default``).

    Pass one ``pool`` (and one ``cache`` and ``accounting``) for all agents of a run so they
    share backends; without a pool this client gets backends of its own.
    """
    name = config.backend_name(agent)
    pool = pool if pool is not None else LLMPool(config, sleep=sleep)
    return LLMClient(
        backend_name=name,
        config=config.backends[name],
        backend_factory=lambda: pool.backend(name),
        cache=cache,
        accounting=accounting,
        prices=config.prices,
    )


def open_cache(config: LLMConfig, run_dir: Path | None = None) -> LLMCache | None:
    """The record/replay cache the config asks for, or None when ``llm.cache.mode`` is off."""
    path = config.cache_path(run_dir)
    if path is None or config.cache.mode is CacheMode.OFF:
        return None
    return LLMCache(path, config.cache.mode)


def make_accounting(config: LLMConfig, state: dict[str, Any] | None = None) -> Accounting:
    """Accounting with the config's budget and prices, continuing ``state`` if given."""
    if state is not None:
        return Accounting.from_state(state, config.budget, config.prices)
    return Accounting(config.budget, config.prices)
