"""An on-disk cache in front of the sentence embedder.

Embedding a text is the most expensive thing the memory does (~40 ms per text with MiniLM on a
2-core CPU), and a replayed or resumed run embeds exactly the texts the first run embedded. The
cache keys each vector by the embedding model's id and the text's SHA-256, stores it in SQLite
(WAL, safe for several processes), and hands back the vector computed the first time, so a replay
also gets bit-identical vectors regardless of how texts were batched.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from env.errors import MemoryStoreError
from memory.chroma_store import EmbeddingFunction


def text_key(model_id: str, text: str) -> str:
    """Cache key of ``text`` embedded by ``model_id``."""
    return hashlib.sha256(f"{model_id}\x00{text}".encode()).hexdigest()


class CachedEmbeddingFunction:
    """``texts -> vectors`` that asks ``inner`` only for texts it has not seen (one batch per call).

    ``inner``: the embedder, or a zero-argument factory of it (``lazy=True``) so that a fully cached
    run (a replay) never loads the model. ``path``: the SQLite file (created on first use);
    ``model_id``: names the model, so vectors of different models never mix. ``hits`` and ``misses``
    count texts served from and added to the cache.
    """

    def __init__(self, inner: Any, path: Path, model_id: str, *, lazy: bool = False) -> None:
        self._inner = None if lazy else inner
        self._inner_factory = inner if lazy else None
        self.path = Path(path)
        self.model_id = model_id
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()  # analyst nodes embed from several threads
        self._conn: sqlite3.Connection | None = None

    @property
    def inner(self) -> EmbeddingFunction:
        """The wrapped embedder, built on first use when lazy."""
        if self._inner is None:
            self._inner = self._inner_factory()
        return self._inner

    @property
    def inner_loaded(self) -> bool:
        """False while a lazy embedder has not been needed."""
        return self._inner is not None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER NOT NULL, data BLOB NOT NULL)")
                conn.commit()
            except sqlite3.Error as err:
                raise MemoryStoreError(f"embedding cache {self.path}: cannot open ({err}); delete the file or fix its permissions") from err
            self._conn = conn
        return self._conn

    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        keys = [text_key(self.model_id, text) for text in texts]
        with self._lock:
            conn = self._connection()
            found: dict[str, np.ndarray] = {}
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                rows = conn.execute(
                    f"SELECT key, dim, data FROM vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                for key, dim, data in rows:
                    vector = np.frombuffer(data, dtype=np.float32)
                    if vector.size != dim:
                        raise MemoryStoreError(f"embedding cache {self.path}: corrupt entry {key[:12]}; delete the file to rebuild it")
                    found[key] = vector
            missing = [i for i, key in enumerate(keys) if key not in found]
            missing_unique = list(dict.fromkeys(keys[i] for i in missing))
            if missing_unique:
                text_of = dict(zip(keys, texts))  # equal keys mean equal texts
                vectors = self.inner([text_of[key] for key in missing_unique])
                fresh = {key: np.asarray(v, dtype=np.float32) for key, v in zip(missing_unique, vectors, strict=True)}
                conn.executemany(
                    "INSERT OR IGNORE INTO vectors (key, dim, data) VALUES (?, ?, ?)",
                    [(key, int(v.size), v.tobytes()) for key, v in fresh.items()],
                )
                conn.commit()
                found.update(fresh)
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        return [found[key] for key in keys]

    def close(self) -> None:
        """Close the SQLite connection (it reopens on the next call)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def model_id_of(path: Path, extra: Sequence[str] = ()) -> str:
    """A stable id for a local model folder: its last two path parts plus the size of each weights file."""
    path = Path(path)
    sizes = sorted(f"{p.name}:{p.stat().st_size}" for p in path.glob("*.safetensors")) or sorted(
        f"{p.name}:{p.stat().st_size}" for p in path.glob("*.bin")
    )
    return "|".join([f"{path.parent.name}/{path.name}", *sizes, *extra])
