"""The on-disk embedding cache in front of the real MiniLM embedder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from env.errors import MemoryStoreError
from memory.config import MemoryConfig
from memory.embedding_cache import CachedEmbeddingFunction, text_key
from memory.factory import make_embedding_function


class Counting:
    """Wraps the real embedder to count the texts it is asked for."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return self.inner(texts)


def test_second_run_embeds_nothing_and_gets_identical_vectors(embedder, tmp_path: Path) -> None:
    texts = ["Acme beats estimates", "Globex cuts guidance", "Acme beats estimates"]
    first_inner = Counting(embedder)
    first = CachedEmbeddingFunction(first_inner, tmp_path / "e.sqlite", "minilm")
    vectors = first(texts)
    assert first_inner.calls == [["Acme beats estimates", "Globex cuts guidance"]]  # the duplicate is embedded once
    assert first.misses == 3 and first.hits == 0
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_allclose(vectors[1], np.asarray(embedder(["Globex cuts guidance"])[0]), atol=1e-5)
    first.close()
    # A new process (a replay) reads the same file: no model call, the very same bits, in any batching.
    second_inner = Counting(embedder)
    second = CachedEmbeddingFunction(second_inner, tmp_path / "e.sqlite", "minilm")
    again = second([texts[1], texts[0]])
    assert second_inner.calls == [] and second.hits == 2
    assert again[0].tobytes() == vectors[1].tobytes() and again[1].tobytes() == vectors[0].tobytes()
    # Another model id never sees these vectors.
    other_inner = Counting(embedder)
    CachedEmbeddingFunction(other_inner, tmp_path / "e.sqlite", "other-model")([texts[0]])
    assert other_inner.calls == [[texts[0]]]


def test_corrupt_entry_is_a_clear_error(embedder, tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite"
    cache = CachedEmbeddingFunction(embedder, path, "minilm")
    cache(["Acme"])
    cache.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE vectors SET data = ? WHERE key = ?", (b"\x00" * 12, text_key("minilm", "Acme")))
    with pytest.raises(MemoryStoreError, match="corrupt entry"):
        CachedEmbeddingFunction(embedder, path, "minilm")(["Acme"])


def test_factory_caches_only_when_asked(tmp_path: Path) -> None:
    plain = make_embedding_function(MemoryConfig())
    assert not isinstance(plain, CachedEmbeddingFunction)
    cached = make_embedding_function(MemoryConfig(), cache_path=tmp_path / "e.sqlite")
    assert isinstance(cached, CachedEmbeddingFunction) and "minilm" in cached.model_id.lower()
    cached(["Acme"])
    assert cached.inner_loaded
    cached.close()
    # A run whose texts are all cached never loads the model.
    replay = make_embedding_function(MemoryConfig(), cache_path=tmp_path / "e.sqlite")
    assert replay(["Acme"])[0].shape == (384,) and not replay.inner_loaded
    off = make_embedding_function(MemoryConfig(embedding_cache=False), cache_path=tmp_path / "e.sqlite")
    assert not isinstance(off, CachedEmbeddingFunction)
