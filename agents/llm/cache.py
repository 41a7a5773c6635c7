"""Record/replay cache of model answers in SQLite.

Keyed by the sha256 of a canonical JSON of (backend, model, parameters, call kind,
messages, options or schema). Values are the result objects as JSON: Python's ``json``
writes floats with ``repr``, which round-trips exactly, so replayed probabilities are
bit-identical. WAL mode and one transaction per write: a process killed mid-write loses
at most that one answer, never the file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from env.errors import LLMError

from .config import CacheMode

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_cache (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    agent TEXT NOT NULL,
    request TEXT NOT NULL,
    result TEXT NOT NULL
)
"""


def cache_key(request: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``request`` (sorted keys, no whitespace)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class LLMCache:
    """SQLite store of model answers. One instance per process; safe across threads.

    ``mode`` decides what the client does with it (see ``CacheMode``); the cache itself just
    gets and puts. Use as a context manager or call ``close``.
    """

    def __init__(self, path: Path | str, mode: CacheMode | str = CacheMode.AUTO) -> None:
        self.mode = CacheMode(mode)
        if self.mode is CacheMode.OFF:
            raise ValueError("llm.cache.mode: an LLMCache needs mode record, replay or auto (pass cache=None for off)")
        self.path = Path(path)
        if self.mode is CacheMode.REPLAY and not self.path.is_file():
            raise LLMError(f"llm.cache.path: replay mode needs an existing cache file, {self.path} does not exist")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # check_same_thread=False: access is serialised by self._lock.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored result JSON for ``key``, or None."""
        with self._lock:
            row = self._conn.execute("SELECT result FROM llm_cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, *, kind: str, agent: str, request: dict[str, Any], result: dict[str, Any]) -> None:
        """Store ``result`` under ``key`` in one transaction (replaces an older answer)."""
        payload = (
            key,
            kind,
            agent,
            json.dumps(request, sort_keys=True, ensure_ascii=False),
            json.dumps(result, ensure_ascii=False, allow_nan=False),  # key order kept: probs follow option order
        )
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT OR REPLACE INTO llm_cache (key, kind, agent, request, result) VALUES (?, ?, ?, ?, ?)",
                    payload,
                )
            except sqlite3.Error:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM llm_cache").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> LLMCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LLMCache(path={str(self.path)!r}, mode={self.mode.value!r})"


def merge_caches(target: Path | str, sources: list[Path]) -> int:
    """Create the cache file ``target`` holding every answer of the cache files ``sources``.

    Why: a run that starts from the answers earlier runs recorded on the same data (a sweep cell, an
    ablation) replays every prompt they share and calls the model only for the rest. Keys name the
    backend, model and parameters, so an answer is only ever reused for the very same request.
    Written to a temporary file and renamed into place: a kill leaves no half-merged cache. The
    first source wins where two hold the same key (their answers to one request are identical
    unless the model changed). Returns the number of answers written; ``FileExistsError`` if
    ``target`` exists (this never mixes answers into a cache a run is writing).
    """
    import os

    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} exists; merge_caches only creates a new cache")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.merging")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute(_SCHEMA)
        for source in sources:
            conn.execute("ATTACH DATABASE ? AS source", (str(Path(source).resolve()),))
            try:
                conn.execute("BEGIN")
                conn.execute("INSERT OR IGNORE INTO llm_cache SELECT key, kind, agent, request, result FROM source.llm_cache")
                conn.execute("COMMIT")
            finally:
                conn.execute("DETACH DATABASE source")
        count = int(conn.execute("SELECT COUNT(*) FROM llm_cache").fetchone()[0])
    finally:
        conn.close()
    os.replace(tmp, target)
    return count
