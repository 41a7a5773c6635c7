"""``ChromaMemoryStore``: the layered memory on ChromaDB (client and embedding function injected).

Layout: one Chroma collection per layer, named ``<collection_prefix>-<layer>``, cosine space, no
Chroma-side embedding function (we embed once per query/batch ourselves and pass vectors, so Chroma's
default embedder, which downloads a model, is never used). Metadata values are typed scalars; every
datetime is stored twice, as epoch seconds (``*_epoch``, for filters) and ISO text (``*_iso``, exact).

Durability: ids are deterministic and every write is an ``upsert``, so retrying a step converges.
A layer move is "upsert into the new layer, then delete from the old one"; an item caught in both
after a crash is resolved on load by the highest ``revision`` (then newest ``updated_at``), and a
writer deletes the stale copy and logs a ``repair`` move. Exactly one writer per store: a
``fcntl.flock`` lock file in ``state_dir`` (released by the OS if the process dies).

Group commit (``memory.write_behind``): a Chroma write costs milliseconds whatever its size, and more
as a collection grows (ChromaDB 1.5.9 here: a 3-item upsert took 6.5 ms into an empty collection and
15 ms at 900 items), while a session of the demo's agents makes about six small ones (4.4 upserts and
1.4 deletes, ~110 ms of a 130 ms replayed session, measured on ``benchmarks/bench_graph.py``'s run). So a writer with a ``state_dir`` appends each write (the upsert's ids,
documents, metadata and float32 vectors in base64, or the delete's ids) as one JSON line to
``pending_writes.jsonl`` (one ``write`` syscall, no fsync: it survives SIGKILL like the trace) and
applies the log to Chroma, coalesced to its last state per (layer, id), once ``write_behind``
item writes are pending, on ``flush()`` and on ``close()``; then truncates it. A writer opening the
store first applies a log a dead process left (a torn last line, from a call that never returned,
is dropped and logged); a reader applies it to its index without writing. Reads never wait: the
in-process index is updated at once, as before. ``write_behind: 0`` writes through.

Retrieval: see ``memory/index.py`` for why the default ``exact`` mode scores an in-process index.
The ``chroma`` mode asks Chroma with a ``where`` filter (public_at_epoch <= as_of, ticker) for a
candidate pool and re-ranks it; both modes re-check ``public_at <= as_of`` in Python.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from env.errors import LookaheadError, MemoryStoreError
from env.records import SourceType
from memory.base import LADDER, MARKET_TICKER, Layer, MemoryItem, MemoryMove, MoveCause, ScoredMemory, recent_items
from memory.config import MemoryConfig
from memory.index import MemoryIndex, Scored, unit_vector
from memory.scoring import (
    days_between,
    decayed_importance,
    epoch_seconds,
    feedback_importance,
    is_expired,
    target_layer,
)

logger = logging.getLogger(__name__)

EmbeddingFunction = Callable[[list[str]], Sequence[Sequence[float]]]

LOCK_FILE = "writer.lock"
MOVES_LOG = "memory_moves.jsonl"
PENDING_LOG = "pending_writes.jsonl"


def _utc(moment: dt.datetime, field: str) -> dt.datetime:
    if not isinstance(moment, dt.datetime):
        raise MemoryStoreError(f"{field}: expected an aware datetime, got {type(moment).__name__}")
    if moment.tzinfo is None:
        raise MemoryStoreError(f"{field}: must be timezone-aware (got a naive datetime {moment.isoformat()})")
    return moment.astimezone(dt.timezone.utc)


def _to_metadata(item: MemoryItem) -> dict[str, str | int | float | bool]:
    """Chroma metadata for an item: scalars only; datetimes as epoch seconds + ISO text."""
    assert item.layer and item.importance_at and item.created_at and item.updated_at
    meta: dict[str, str | int | float | bool] = {
        "ticker": item.ticker,
        "source_type": item.source_type.value,
        "source_id": item.source_id,
        "url": item.url,
        "event_date": item.event_date.isoformat() if item.event_date else "",
        "layer": item.layer.value,
        "importance": item.importance,
        "access_count": item.access_count,
        "reason": item.reason,
        "revision": item.revision,
        "notes": json.dumps(list(item.notes)),
    }
    for name in ("public_at", "importance_at", "created_at", "updated_at"):
        moment: dt.datetime = getattr(item, name)
        meta[f"{name}_epoch"] = epoch_seconds(moment)
        meta[f"{name}_iso"] = moment.isoformat()
    # Chroma has no null: optional annotations are simply absent when unknown.
    for name in ("relevance_prob", "impact_label", "impact_score"):
        value = getattr(item, name)
        if value is not None:
            meta[name] = value
    return meta


def _from_metadata(item_id: str, document: str, meta: dict[str, Any]) -> MemoryItem:
    """Rebuild an item from its stored document and metadata (fails loudly on a corrupt row)."""
    try:
        return MemoryItem(
            id=item_id,
            text=document,
            ticker=meta["ticker"],
            source_type=SourceType(meta["source_type"]),
            source_id=meta["source_id"],
            url=meta["url"],
            event_date=dt.date.fromisoformat(meta["event_date"]) if meta["event_date"] else None,
            public_at=dt.datetime.fromisoformat(meta["public_at_iso"]),
            layer=Layer(meta["layer"]),
            importance=meta["importance"],
            importance_at=dt.datetime.fromisoformat(meta["importance_at_iso"]),
            access_count=meta["access_count"],
            reason=meta["reason"],
            relevance_prob=meta.get("relevance_prob"),
            impact_label=meta.get("impact_label"),
            impact_score=meta.get("impact_score"),
            created_at=dt.datetime.fromisoformat(meta["created_at_iso"]),
            updated_at=dt.datetime.fromisoformat(meta["updated_at_iso"]),
            revision=meta["revision"],
            notes=tuple(json.loads(meta["notes"])),
        )
    except (KeyError, ValueError) as err:
        raise MemoryStoreError(f"stored memory {item_id}: corrupt metadata ({err}); metadata was {meta}") from err


def _pack(vector: NDArray[np.float32]) -> str:
    """A float32 vector as base64 of its little-endian bytes (exact, and ~10x cheaper than JSON floats)."""
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _unpack(text: str) -> NDArray[np.float32]:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def _newer(a: MemoryItem, b: MemoryItem) -> bool:
    """True if ``a`` is a later version of the same item than ``b``."""
    assert a.updated_at and b.updated_at
    return (a.revision, a.updated_at) > (b.revision, b.updated_at)


F = TypeVar("F", bound=Callable[..., Any])


def _serialised(method: F) -> F:
    """One call at a time per store: the graph's analysts run as parallel branches of one process,
    and an index read while another branch inserts would see a half-written row (or a dict changing
    size mid-iteration)."""

    @wraps(method)
    def guarded(self: ChromaMemoryStore, *args: Any, **kwargs: Any) -> Any:
        with self._guard:
            return method(self, *args, **kwargs)

    return guarded  # type: ignore[return-value]


class ChromaMemoryStore:
    """Layered FinMem-style memory on ChromaDB. Implements ``memory.base.MemoryStore``.

    Args:
        client: a Chroma client (``PersistentClient`` or ``HttpClient``), owned by the caller unless
            ``close_client`` is true.
        embedding_function: texts -> vectors (e.g. Chroma's ``SentenceTransformerEmbeddingFunction``).
        config: the memory config.
        state_dir: folder for the writer lock and the ``memory_moves.jsonl`` audit log; None = no lock
            and no log file (in-memory clients in tests only).
        read_only: open without the lock; every write raises ``MemoryStoreError``. The index is a
            snapshot taken at open (call ``refresh()`` to see a writer's later changes).
        close_client: close ``client`` in ``close()``.
    """

    def __init__(
        self,
        client: Any,
        embedding_function: EmbeddingFunction,
        config: MemoryConfig,
        *,
        state_dir: Path | None = None,
        read_only: bool = False,
        close_client: bool = False,
    ) -> None:
        self._client = client
        self._embed = embedding_function
        self._config = config
        self._read_only = read_only
        self._close_client = close_client
        self._lock_fd: int | None = None
        self._guard = threading.RLock()
        self._closed = False
        self._log_path = None if state_dir is None else Path(state_dir) / MOVES_LOG
        # Every store with a state_dir reads a pending log; only a writer configured for it appends.
        self._pending_path = None if state_dir is None else Path(state_dir) / PENDING_LOG
        self._write_behind = config.write_behind if state_dir is not None and not read_only else 0
        self._pending_fd: int | None = None
        self._pending: list[dict[str, Any]] = []  # this process's copy of the log's writes since the last flush
        self._pending_writes = 0  # item writes among them
        if state_dir is not None and not read_only:
            self._lock_fd = self._acquire_lock(Path(state_dir))
        self._collections: dict[Layer, Any] = {}
        self._index = MemoryIndex(config)
        try:
            self._collections = self._open_collections()
            self.refresh()
        except BaseException:
            self._collections = {}  # nothing to flush: release the lock and the client only
            self.close()
            raise

    # -- opening -------------------------------------------------------------------------------

    @staticmethod
    def _acquire_lock(state_dir: Path) -> int:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise MemoryStoreError(
                f"memory store {state_dir} is already open for writing (lock {path} is held); "
                "close the other writer first, or open this one with read_only=True"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def _collection_name(self, layer: Layer) -> str:
        return f"{self._config.collection_prefix}-{layer.value}"

    def _open_collections(self) -> dict[Layer, Any]:
        if self._read_only:
            existing = {c.name if hasattr(c, "name") else str(c) for c in self._client.list_collections()}
            return {
                layer: self._client.get_collection(self._collection_name(layer), embedding_function=None)
                for layer in Layer
                if self._collection_name(layer) in existing
            }
        return {
            layer: self._client.get_or_create_collection(
                self._collection_name(layer),
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"tradegraph_layer": layer.value},
            )
            for layer in Layer
        }

    @_serialised
    def refresh(self) -> None:
        """Rebuild the in-process index from Chroma (done at open; a writer repairs crash leftovers).
        A writer first applies the pending log to Chroma; a reader applies it to its index."""
        if not self._read_only:
            self._pending = self._pending_ops()  # what a dead process left (empty after a clean close)
            self._flush()
        index = MemoryIndex(self._config)
        stale: list[tuple[Layer, MemoryItem]] = []
        for layer, collection in self._collections.items():
            for item, vector in self._scan(collection):
                if item.layer is not layer:
                    raise MemoryStoreError(
                        f"stored memory {item.id}: metadata says layer {item.layer}, but it is in the {layer} collection"
                    )
                current = index.items.get(item.id)
                if current is None:
                    index.put(item, vector)
                elif _newer(item, current):
                    stale.append((current.layer, current))  # type: ignore[arg-type]
                    index.put(item, vector)
                else:
                    stale.append((layer, item))
        if self._read_only:
            for op in self._pending_ops():
                self._apply_to_index(index, op)
        self._index = index
        if stale and not self._read_only:
            self._repair(stale)

    # -- the pending log (group commit) --------------------------------------------------------

    def _pending_ops(self) -> list[dict[str, Any]]:
        """The pending log's writes, in order (a torn last line is dropped with a log message)."""
        if self._pending_path is None or not self._pending_path.is_file():
            return []
        ops = []
        lines = self._pending_path.read_bytes().split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                op = json.loads(line)
            except json.JSONDecodeError:
                if number < len(lines):  # only the last line, with no newline yet, can be torn
                    raise MemoryStoreError(f"{self._pending_path}: line {number} is not a write record; the log is damaged") from None
                logger.warning("%s: dropped a torn last write (its call never returned; the step re-runs it)", self._pending_path)
                continue
            if op.get("op") not in ("upsert", "delete") or op.get("layer") not in {layer.value for layer in Layer}:
                raise MemoryStoreError(f"{self._pending_path}: line {number}: unknown write {str(op)[:80]!r}")
            ops.append(op)
        return ops

    @staticmethod
    def _apply_to_index(index: MemoryIndex, op: dict[str, Any]) -> None:
        layer = Layer(op["layer"])
        if op["op"] == "upsert":
            for item_id, document, meta, vector in zip(op["ids"], op["documents"], op["metadatas"], op["vectors"], strict=True):
                index.put(_from_metadata(item_id, document, meta), _unpack(vector))
            return
        for item_id in op["ids"]:
            item = index.items.get(item_id)
            if item is not None and item.layer is layer:
                index.remove(item_id)

    def _append_pending(self, op: dict[str, Any], writes: int) -> None:
        assert self._pending_path is not None
        if self._pending_fd is None:
            self._pending_fd = os.open(self._pending_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        data = (json.dumps(op, separators=(",", ":")) + "\n").encode()
        while data:  # one syscall for a regular file; the loop only guards a short write
            data = data[os.write(self._pending_fd, data):]
        self._pending.append(op)
        self._pending_writes += writes

    def _maybe_flush(self) -> None:
        if self._write_behind and self._pending_writes >= self._write_behind:
            self._flush()

    @_serialised
    def flush(self) -> None:
        """Apply the pending writes to Chroma now (a no-op for a reader or with nothing pending)."""
        if not self._read_only and not self._closed:
            self._flush()

    def _flush(self) -> None:
        """Apply the pending writes to Chroma, coalesced to each (layer, id)'s last write, then empty
        the log. Upserts go before deletes, so a crash in between leaves at worst a copy in two
        layers, which ``refresh`` repairs by revision; and the log, kept until the end, is applied again."""
        last: dict[Layer, dict[str, tuple[str, dict[str, Any], str] | None]] = {layer: {} for layer in Layer}
        for op in self._pending:
            rows = last[Layer(op["layer"])]
            if op["op"] == "upsert":
                for item_id, document, meta, vector in zip(op["ids"], op["documents"], op["metadatas"], op["vectors"], strict=True):
                    rows[item_id] = (document, meta, vector)
            else:
                rows.update(dict.fromkeys(op["ids"]))
        for layer, rows in last.items():
            kept = [(item_id, row) for item_id, row in rows.items() if row is not None]
            if kept:
                self._chroma_upsert(layer, [i for i, _ in kept], [r[0] for _, r in kept], [r[1] for _, r in kept],
                                    [_unpack(r[2]).tolist() for _, r in kept])
        for layer, rows in last.items():
            gone = [item_id for item_id, row in rows.items() if row is None]
            if gone:
                self._chroma_delete(layer, gone)
        if self._pending_fd is not None:
            os.ftruncate(self._pending_fd, 0)
        elif self._pending_path is not None and self._pending_path.is_file() and self._pending_path.stat().st_size:
            with self._pending_path.open("r+b") as log:
                log.truncate(0)
        self._pending, self._pending_writes = [], 0

    def _scan(self, collection: Any) -> list[tuple[MemoryItem, NDArray[np.float32]]]:
        rows: list[tuple[MemoryItem, NDArray[np.float32]]] = []
        page = max(self._config.batch_size, 1000)
        offset = 0
        while True:
            got = collection.get(include=["embeddings", "metadatas", "documents"], limit=page, offset=offset)
            ids = got["ids"]
            for item_id, document, meta, vector in zip(ids, got["documents"], got["metadatas"], got["embeddings"], strict=True):
                rows.append((_from_metadata(item_id, document, meta), np.asarray(vector, dtype=np.float32)))
            if len(ids) < page:
                return rows
            offset += page

    def _repair(self, stale: list[tuple[Layer, MemoryItem]]) -> None:
        """Delete copies left behind by an interrupted move, and log each as a ``repair`` move."""
        moves = []
        for layer, old in sorted(stale, key=lambda pair: pair[1].id):
            self._collections[layer].delete(ids=[old.id])
            current = self._index.items[old.id]
            assert current.updated_at is not None
            moves.append(
                MemoryMove(
                    item_id=old.id,
                    from_layer=layer,
                    to_layer=current.layer,
                    cause=MoveCause.REPAIR,
                    detail=f"removed revision {old.revision} left in {layer} by an interrupted move; "
                    f"revision {current.revision} lives in {current.layer}",
                    as_of=current.updated_at,
                    importance_before=old.importance,
                    importance_after=current.importance,
                )
            )
        self._log(moves)

    # -- writing -------------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._closed:
            raise MemoryStoreError("memory store is closed")
        if self._read_only:
            raise MemoryStoreError("memory store was opened read-only; open it without read_only to write")

    def _embed_texts(self, texts: list[str]) -> NDArray[np.float32]:
        vectors: list[NDArray[np.float32]] = []
        for start in range(0, len(texts), self._config.batch_size):
            batch = texts[start : start + self._config.batch_size]
            vectors.extend(np.asarray(v, dtype=np.float32) for v in self._embed(batch))
        return np.stack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)

    def _upsert(self, layer: Layer, items: list[MemoryItem], vectors: list[NDArray[np.float32]]) -> None:
        ids, documents, metadatas = [item.id for item in items], [item.text for item in items], [_to_metadata(item) for item in items]
        if self._write_behind:
            self._append_pending(
                {"op": "upsert", "layer": layer.value, "ids": ids, "documents": documents, "metadatas": metadatas,
                 "vectors": [_pack(v) for v in vectors]},
                len(items),
            )
        else:
            self._chroma_upsert(layer, ids, documents, metadatas, [v.tolist() for v in vectors])

    def _chroma_upsert(self, layer: Layer, ids: list[str], documents: list[str], metadatas: list[dict[str, Any]],
                       embeddings: list[list[float]]) -> None:
        step = self._config.batch_size
        for start in range(0, len(ids), step):
            self._collections[layer].upsert(
                ids=ids[start : start + step], documents=documents[start : start + step],
                metadatas=metadatas[start : start + step], embeddings=embeddings[start : start + step],
            )

    def _chroma_delete(self, layer: Layer, ids: list[str]) -> None:
        step = self._config.batch_size
        for start in range(0, len(ids), step):
            self._collections[layer].delete(ids=ids[start : start + step])

    def _prepare(self, position: int, item: MemoryItem, as_of: dt.datetime) -> MemoryItem:
        if item.public_at > as_of:
            raise LookaheadError(
                f"items[{position}] ({item.source_type} {item.source_id or item.id[:12]}): public_at "
                f"{item.public_at.isoformat()} is after as_of {as_of.isoformat()}; store it once it is public"
            )
        layer = item.layer
        if layer is None:
            layer = self._config.routing.get(item.source_type)
            if layer is None:
                raise MemoryStoreError(
                    f"items[{position}]: source_type {item.source_type.value!r} has no layer in memory.routing; add it"
                )
        text, notes = item.text, item.notes
        if len(text) > self._config.max_text_chars:
            notes = (*notes, f"text: truncated from {len(text)} to {self._config.max_text_chars} characters")
            text = text[: self._config.max_text_chars]
        return item.model_copy(
            update={
                "text": text,
                "notes": notes,
                "layer": layer,
                "importance": self._config.initial_importance[layer] if item.importance is None else item.importance,
                "importance_at": as_of,
                "created_at": as_of,
                "updated_at": as_of,
                "revision": 1,
            }
        )

    @_serialised
    def add(self, items: Sequence[MemoryItem], as_of: dt.datetime) -> list[str]:
        """Store new items at simulated time ``as_of``; returns the ids of all ``items``, in order.

        Idempotent: an id already stored (in any layer) is left untouched, so re-running a step after a
        crash or resume changes nothing. Items are routed by ``config.routing`` unless ``layer`` is set;
        text over ``max_text_chars`` is truncated (noted on the item). Raises ``LookaheadError`` for an
        item whose ``public_at`` is after ``as_of``.
        """
        self._check_writable()
        as_of = _utc(as_of, "as_of")
        ids: list[str] = []
        fresh: dict[str, MemoryItem] = {}
        for position, item in enumerate(items):
            if not isinstance(item, MemoryItem):
                raise MemoryStoreError(f"items[{position}]: expected a MemoryItem, got {type(item).__name__}")
            ids.append(item.id)
            if item.id not in self._index and item.id not in fresh:
                fresh[item.id] = self._prepare(position, item, as_of)
        if not fresh:
            return ids
        prepared = list(fresh.values())
        vectors = self._embed_texts([item.text for item in prepared])
        by_layer: dict[Layer, tuple[list[MemoryItem], list[NDArray[np.float32]]]] = {}
        for item, vector in zip(prepared, vectors, strict=True):
            assert item.layer is not None
            group = by_layer.setdefault(item.layer, ([], []))
            group[0].append(item)
            group[1].append(vector)
        for layer, (layer_items, layer_vectors) in by_layer.items():
            self._upsert(layer, layer_items, layer_vectors)
        # The index follows only after Chroma acknowledged, so it never claims an unwritten item.
        for item, vector in zip(prepared, vectors, strict=True):
            self._index.put(item, vector)
        self._maybe_flush()
        return ids

    def _commit(self, updated: list[tuple[MemoryItem, Layer]], deleted: list[MemoryItem], moves: list[MemoryMove]) -> None:
        """Write new versions (upsert into their layer), then delete old copies and expired items."""
        by_layer: dict[Layer, tuple[list[MemoryItem], list[NDArray[np.float32]]]] = {}
        for item, _ in updated:
            assert item.layer is not None
            group = by_layer.setdefault(item.layer, ([], []))
            group[0].append(item)
            group[1].append(self._index.vector(item.id))
        for layer, (layer_items, layer_vectors) in by_layer.items():
            self._upsert(layer, layer_items, layer_vectors)
        removals: dict[Layer, list[str]] = {}
        for item, old_layer in updated:
            if item.layer is not old_layer:
                removals.setdefault(old_layer, []).append(item.id)
        for item in deleted:
            assert item.layer is not None
            removals.setdefault(item.layer, []).append(item.id)
        for layer, layer_ids in removals.items():
            self._delete_from(layer, layer_ids)
        for item, _ in updated:
            self._index.put(item, self._index.vector(item.id))
        for item in deleted:
            self._index.remove(item.id)
        self._log(moves)
        self._maybe_flush()

    def _delete_from(self, layer: Layer, ids: list[str]) -> None:
        if self._write_behind:
            self._append_pending({"op": "delete", "layer": layer.value, "ids": list(ids)}, len(ids))
        else:
            self._chroma_delete(layer, ids)

    def _log(self, moves: list[MemoryMove]) -> None:
        for move in moves:
            logger.info("memory move %s %s -> %s: %s", move.item_id[:12], move.from_layer, move.to_layer, move.detail)
        if self._log_path is None or not moves:
            return
        with self._log_path.open("a", encoding="utf-8") as log:
            log.writelines(move.model_dump_json() + "\n" for move in moves)

    def _moved(self, item: MemoryItem, importance: float, as_of: dt.datetime, **changes: Any) -> MemoryItem:
        return item.model_copy(
            update={
                "importance": importance,
                "importance_at": as_of,
                "updated_at": as_of,
                "revision": item.revision + 1,
                **changes,
            }
        )

    def feedback(self, item_ids: Sequence[str], reward: float, as_of: dt.datetime) -> list[MemoryMove]:
        """Reward the memories used in a decision: importance += clip(scale * reward), access_count += 1.

        Importance is first decayed to ``as_of``, then moved by ``feedback_scale * reward`` points (at
        most ``feedback_max_step``), clipped to [0, 100]. An item whose new importance crosses a
        threshold changes layer at once (returned and logged). Ids no longer stored (expired since
        retrieval, as delayed rewards allow) are skipped with a log message.
        """
        return self.feedback_many([(item_ids, reward)], as_of)

    @_serialised
    def feedback_many(self, batch: Sequence[tuple[Sequence[str], float]], as_of: dt.datetime) -> list[MemoryMove]:
        """Several ``feedback`` calls at one ``as_of``, applied in order, written in one commit.

        The result equals calling ``feedback`` for each ``(item_ids, reward)`` in turn (each sees the
        importance the previous ones left), but ChromaDB is written once: a session's matured
        rewards cost one upsert per layer instead of one per reward part.
        """
        self._check_writable()
        as_of = _utc(as_of, "as_of")
        rewards = []
        for item_ids, reward in batch:
            try:
                value = float(reward)
            except (TypeError, ValueError):
                raise MemoryStoreError(f"reward: must be a finite number, got {reward!r}") from None
            if not math.isfinite(value):
                raise MemoryStoreError(f"reward: must be a finite number, got {reward!r}")
            rewards.append((item_ids, value))
        as_of_epoch = epoch_seconds(as_of)
        current: dict[str, MemoryItem] = {}  # this batch's newest version of each item
        first_layer: dict[str, Layer] = {}  # the layer each item is stored in before the batch
        moves: list[MemoryMove] = []
        for item_ids, reward in rewards:
            for item_id in dict.fromkeys(item_ids):
                item = current.get(item_id) or self._index.items.get(item_id)
                if item is None:
                    logger.info("memory feedback skipped unknown or expired item %s", item_id)
                    continue
                assert item.layer is not None
                first_layer.setdefault(item_id, item.layer)
                before = self._decayed(item, as_of_epoch)
                after = feedback_importance(before, reward, self._config.feedback_scale, self._config.feedback_max_step)
                layer = target_layer(item.layer, after, self._config.thresholds)
                current[item_id] = self._moved(item, after, as_of, layer=layer, access_count=item.access_count + 1)
                if layer is not item.layer:
                    moves.append(self._move(item, layer, before, after, as_of, f"feedback reward {reward:+.4g}"))
        self._commit([(item, first_layer[item_id]) for item_id, item in current.items()], [], moves)
        return moves

    def _decayed(self, item: MemoryItem, as_of_epoch: float) -> float:
        """Importance points of ``item`` decayed to ``as_of_epoch`` at its layer's rate."""
        assert item.layer is not None and item.importance_at is not None
        days = days_between(epoch_seconds(item.importance_at), as_of_epoch)
        return float(decayed_importance(item.importance, self._config.dynamics[item.layer].importance_decay, days))

    def _move(self, item: MemoryItem, to: Layer, before: float, after: float, as_of: dt.datetime, why: str) -> MemoryMove:
        assert item.layer is not None
        up = LADDER.index(to) > LADDER.index(item.layer)
        th = self._config.thresholds
        rule = (
            f">= promote threshold {th.promote_to_intermediate if to is Layer.INTERMEDIATE else th.promote_to_deep}"
            if up
            else f"< demote threshold {th.demote_to_shallow if to is Layer.SHALLOW else th.demote_to_intermediate}"
        )
        return MemoryMove(
            item_id=item.id,
            from_layer=item.layer,
            to_layer=to,
            cause=MoveCause.PROMOTION if up else MoveCause.DEMOTION,
            detail=f"{why}: importance {before:.2f}{'' if after == before else f' -> {after:.2f}'} {rule}",
            as_of=as_of,
            importance_before=before,
            importance_after=after,
        )

    @_serialised
    def step_day(self, as_of: dt.datetime) -> list[MemoryMove]:
        """End of a simulated day: demote/promote by decayed importance, delete expired items.

        Importance decays lazily (it is computed from ``importance`` and ``importance_at``), so this
        only writes items that change layer or expire. Deleted: recency < ``recency_floor`` and
        importance < ``importance_floor``. Reflection items never move and never expire.
        Re-running the same day is a no-op (thresholds have hysteresis).
        """
        self._check_writable()
        as_of = _utc(as_of, "as_of")
        as_of_epoch = epoch_seconds(as_of)
        th = self._config.thresholds
        promote_at = {Layer.SHALLOW: th.promote_to_intermediate, Layer.INTERMEDIATE: th.promote_to_deep, Layer.DEEP: math.inf}
        demote_below = {Layer.SHALLOW: -math.inf, Layer.INTERMEDIATE: th.demote_to_shallow, Layer.DEEP: th.demote_to_intermediate}
        updated: list[tuple[MemoryItem, Layer]] = []
        deleted: list[MemoryItem] = []
        moves: list[MemoryMove] = []
        for layer in LADDER:
            ids, recency_value, importance = self._index.layer_state(layer, as_of_epoch)
            expired = is_expired(recency_value, importance, self._config.recency_floor, self._config.importance_floor)
            candidates = expired | (importance >= promote_at[layer]) | (importance < demote_below[layer])
            for row in sorted(np.flatnonzero(candidates), key=lambda r: ids[r]):
                item = self._index.items[ids[row]]
                points = float(importance[row])
                if expired[row]:
                    deleted.append(item)
                    moves.append(
                        MemoryMove(
                            item_id=item.id,
                            from_layer=layer,
                            to_layer=None,
                            cause=MoveCause.EXPIRY,
                            detail=f"recency {recency_value[row]:.4f} < floor {self._config.recency_floor} and "
                            f"importance {points:.2f} < floor {self._config.importance_floor}: deleted",
                            as_of=as_of,
                            importance_before=points,
                            importance_after=points,
                        )
                    )
                    continue
                to = target_layer(layer, points, th)
                if to is not layer:
                    updated.append((self._moved(item, points, as_of, layer=to), layer))
                    moves.append(self._move(item, to, points, points, as_of, "daily decay"))
        self._commit(updated, deleted, moves)
        return moves

    # -- reading -------------------------------------------------------------------------------

    @_serialised
    def query(
        self,
        text: str,
        *,
        ticker: str | None,
        as_of: dt.datetime,
        k_per_layer: int | dict[Layer, int] | None = None,
        layers: Sequence[Layer] | None = None,
        query_embedding: Sequence[float] | NDArray[np.floating] | None = None,
    ) -> list[ScoredMemory]:
        """Best memories for ``text`` at simulated time ``as_of``: top-k of each layer, merged, best first.

        Only items with ``public_at <= as_of`` are returned. ``ticker`` limits results to that ticker
        plus market-wide items (``MARKET_TICKER``); None searches all. ``query_embedding`` skips
        embedding ``text`` (pass a vector from the same model).
        """
        if self._closed:
            raise MemoryStoreError("memory store is closed")
        as_of = _utc(as_of, "as_of")
        as_of_epoch = epoch_seconds(as_of)
        if query_embedding is not None:
            query_unit = unit_vector(np.asarray(query_embedding, dtype=np.float32))
        elif isinstance(text, str) and text.strip():
            query_unit = unit_vector(self._embed([text])[0])
        else:
            raise MemoryStoreError("query text: must be non-empty (or pass query_embedding)")
        found: dict[str, Scored] = {}
        for layer in layers if layers is not None else list(Layer):
            k = self._config.k_for(Layer(layer), k_per_layer)
            if k <= 0:
                continue
            if self._config.retrieval == "exact":
                hits = self._index.search(query_unit, layer=Layer(layer), ticker=ticker, as_of_epoch=as_of_epoch, k=k)
            else:
                hits = self._chroma_search(query_unit, Layer(layer), ticker, as_of_epoch, k)
            for hit in hits:
                if hit.item.public_at > as_of:  # second line of defence against look-ahead
                    continue
                kept = found.get(hit.item.id)
                if kept is None or hit.score > kept.score:
                    found[hit.item.id] = hit
        ranked = sorted(found.values(), key=lambda s: (-s.score, s.item.id))
        return [
            ScoredMemory(
                item=s.item,
                score=s.score,
                recency=min(max(s.recency, 0.0), 1.0),
                importance=min(max(s.importance_points / 100.0, 0.0), 1.0),
                relevance=s.relevance,
            )
            for s in ranked
        ]

    def _chroma_search(self, query_unit: NDArray[np.float32], layer: Layer, ticker: str | None, as_of_epoch: float, k: int) -> list[Scored]:
        if self._pending_writes:
            self._flush()  # Chroma answers this search: it must hold every write first
        collection = self._collections.get(layer)
        stored = self._index.count(layer)
        if collection is None or stored == 0:
            return []
        where: dict[str, Any] = {"public_at_epoch": {"$lte": as_of_epoch}}
        if ticker is not None:
            where = {"$and": [where, {"ticker": {"$in": sorted({ticker, MARKET_TICKER})}}]}
        result = collection.query(
            query_embeddings=[query_unit.tolist()],
            n_results=min(max(self._config.chroma_candidates, k), stored),
            where=where,
            include=["distances"],
        )
        scored = self._index.score_ids(query_unit, result["ids"][0], as_of_epoch)
        scored.sort(key=lambda s: (-s.score, s.item.id))
        return scored[:k]

    @_serialised
    def get(self, ids: Sequence[str]) -> list[MemoryItem]:
        """Stored items for the ids that exist, in the order asked (unknown ids are skipped)."""
        return [self._index.items[i] for i in ids if i in self._index]

    @_serialised
    def recent(self, *, ticker: str, since: dt.datetime, as_of: dt.datetime, source_types: Sequence[str] | None = None) -> list[MemoryItem]:
        """Items of ``ticker`` made public in ``(since, as_of]``, oldest first (from the in-process index)."""
        return recent_items(self._index.items.values(), ticker=ticker, since=since, as_of=as_of, source_types=source_types)

    @_serialised
    def count(self, layer: Layer | None = None) -> int:
        """Number of stored items in ``layer`` (or in all layers)."""
        return self._index.count(layer)

    @property
    def read_only(self) -> bool:
        """True if opened without the writer lock."""
        return self._read_only

    @_serialised
    def close(self) -> None:
        """Release the writer lock (and the client if this store owns it). Safe to call twice."""
        if self._closed:
            return
        try:
            if not self._read_only and self._collections:
                self._flush()
        finally:
            self._closed = True
            if self._pending_fd is not None:
                os.close(self._pending_fd)
                self._pending_fd = None
            self._release()

    def _release(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
        if self._close_client and hasattr(self._client, "close"):
            self._client.close()

    def __enter__(self) -> ChromaMemoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
