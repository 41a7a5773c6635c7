"""Shared fixtures of the LLM tests: one real local model per session, a scripted OpenAI server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai_stub import StubOpenAIServer

from agents.llm.config import LocalBackendConfig
from agents.llm.local import LocalBackend


@pytest.fixture(scope="session")
def local_config() -> LocalBackendConfig:
    """The embedded model on torch (the runtime these tests read the internals of; the default,
    CTranslate2, is checked against it in test_ct2_runtime.py) and on ONE thread: the suite shares 2
    cores with other jobs, and under that contention 2 torch threads oversubscribe and ran ~8x slower
    than 1 (measured)."""
    return LocalBackendConfig(threads=1, runtime="torch")


@pytest.fixture(scope="session")
def local_backend(local_config: LocalBackendConfig) -> LocalBackend:
    """The real embedded model, loaded once for the whole session (its conversion is cached in .cache/)."""
    backend = LocalBackend(local_config)
    backend.loaded  # load now so per-test timings exclude it
    return backend


@pytest.fixture
def stub() -> Iterator[StubOpenAIServer]:
    """A real HTTP server on 127.0.0.1 speaking chat-completions, scripted by each test."""
    with StubOpenAIServer() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    """Collects backoff delays instead of sleeping, so retry tests are instant."""
    return []
