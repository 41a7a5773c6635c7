"""In-process index of the stored memories: exact FinMem scoring with numpy.

Why it exists: on this machine a ChromaDB query with any ``where`` filter costs ~180-1000 ms at 100k
items (the filter is evaluated in SQLite before the vector search), far above the 10 ms budget,
while an unfiltered HNSW query cannot honour "public at as_of" or a ticker. The store has exactly
one writer (a lock file), so that writer can keep this mirror of its own writes, partitioned by
(layer, ticker): a ticker query touches only that ticker's rows and the market-wide rows, the time
filter is a vector comparison, and every eligible item gets its exact score (no candidate-pool
approximation). Chroma remains the durable store and the source the index is rebuilt from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from memory.base import MARKET_TICKER, Layer, MemoryItem
from memory.config import MemoryConfig
from memory.scoring import combined_score, days_between, decayed_importance, epoch_seconds, recency


def cosines(vectors: NDArray[np.float32], query_unit: NDArray[np.float32]) -> NDArray[np.float32]:
    """Row-wise dot products, clipped to [-1, 1], bit-identical wherever a row sits in ``vectors``.

    BLAS ``gemv`` (``vectors @ query_unit``) is not: rows in the last partial block of its kernel are
    summed in another order, so an item's score moved in the last bit with the number of rows
    stored before it. The row layout follows insertion order, which parallel analysts and a rebuild
    after resume change, and near-ties at the top-k cut then put other memories in a prompt (seen: a
    replayed run asked a question the recorded run never asked). ``einsum`` runs one summation
    loop per row, the same for every row (~2x gemv's time: ~0.1 ms for 1,000 rows).
    """
    return np.clip(np.einsum("ij,j->i", vectors, query_unit), -1.0, 1.0)


def top_rows(score: NDArray[np.floating], k: int, id_of: Callable[[int], str]) -> list[int]:
    """Rows of the ``k`` best scores, ties at the cut settled by id, not by row position."""
    if len(score) <= k:
        return list(range(len(score)))
    cut = np.partition(score, len(score) - k)[len(score) - k]  # the k-th best score
    rows = np.flatnonzero(score >= cut)  # every row tied at the cut is a candidate
    return sorted(rows.tolist(), key=lambda r: (-score[r], id_of(r)))[:k]


@dataclass(frozen=True)
class Scored:
    """One scored row (plain floats; the store wraps it into ``ScoredMemory``)."""

    item: MemoryItem
    score: float
    recency: float
    importance_points: float
    relevance: float


def unit_vector(vector: NDArray[np.floating] | list[float]) -> NDArray[np.float32]:
    """The vector scaled to length 1 (a zero vector stays zero), as float32."""
    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0.0 else array


class _Partition:
    """Column arrays of the items of one (layer, ticker), growable, with swap-remove."""

    def __init__(self, dim: int) -> None:
        self.size = 0
        self.ids: list[str] = []
        self.rows: dict[str, int] = {}
        self.vectors = np.zeros((16, dim), dtype=np.float32)
        self.public_epoch = np.zeros(16)
        self.importance = np.zeros(16)
        self.importance_epoch = np.zeros(16)

    def _grow(self) -> None:
        capacity = 2 * len(self.public_epoch)
        self.vectors = np.resize(self.vectors, (capacity, self.vectors.shape[1]))
        self.public_epoch = np.resize(self.public_epoch, capacity)
        self.importance = np.resize(self.importance, capacity)
        self.importance_epoch = np.resize(self.importance_epoch, capacity)

    def put(self, item: MemoryItem, vector: NDArray[np.float32]) -> None:
        row = self.rows.get(item.id)
        if row is None:
            if self.size == len(self.public_epoch):
                self._grow()
            row = self.size
            self.size += 1
            self.ids.append(item.id)
            self.rows[item.id] = row
        self.vectors[row] = vector
        self.public_epoch[row] = epoch_seconds(item.public_at)
        self.importance[row] = item.importance
        assert item.importance_at is not None, "stored items always carry importance_at"
        self.importance_epoch[row] = epoch_seconds(item.importance_at)

    def remove(self, item_id: str) -> None:
        row = self.rows.pop(item_id)
        last = self.size - 1
        if row != last:
            moved = self.ids[last]
            self.ids[row] = moved
            self.rows[moved] = row
            for column in (self.vectors, self.public_epoch, self.importance, self.importance_epoch):
                column[row] = column[last]
        self.ids.pop()
        self.size = last


class MemoryIndex:
    """All stored items, their unit embeddings, and vectorised scoring."""

    def __init__(self, config: MemoryConfig, dim: int | None = None) -> None:
        self._config = config
        self._dim = dim
        self.items: dict[str, MemoryItem] = {}
        self._partitions: dict[tuple[Layer, str], _Partition] = {}
        self._location: dict[str, tuple[Layer, str]] = {}

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items

    def __len__(self) -> int:
        return len(self.items)

    def count(self, layer: Layer | None = None) -> int:
        """Items in ``layer`` (or all)."""
        if layer is None:
            return len(self.items)
        return sum(p.size for (part_layer, _), p in self._partitions.items() if part_layer is layer)

    def vector(self, item_id: str) -> NDArray[np.float32]:
        """The stored unit embedding of an item."""
        partition = self._partitions[self._location[item_id]]
        return partition.vectors[partition.rows[item_id]].copy()

    def put(self, item: MemoryItem, vector: NDArray[np.floating] | list[float]) -> None:
        """Insert or replace an item (its layer must be set)."""
        assert item.layer is not None, "stored items always carry a layer"
        unit = unit_vector(vector)
        if self._dim is None:
            self._dim = unit.shape[0]
        if unit.shape[0] != self._dim:
            raise ValueError(f"embedding of item {item.id} has {unit.shape[0]} dimensions, the index has {self._dim}")
        key = (item.layer, item.ticker)
        old_key = self._location.get(item.id)
        if old_key is not None and old_key != key:
            self._partitions[old_key].remove(item.id)
        partition = self._partitions.get(key)
        if partition is None:
            partition = self._partitions[key] = _Partition(self._dim)
        partition.put(item, unit)
        self.items[item.id] = item
        self._location[item.id] = key

    def remove(self, item_id: str) -> None:
        """Forget an item (no-op when absent)."""
        key = self._location.pop(item_id, None)
        if key is None:
            return
        self._partitions[key].remove(item_id)
        del self.items[item_id]

    def _partitions_of(self, layer: Layer, tickers: Iterable[str] | None) -> Iterator[_Partition]:
        if tickers is None:
            yield from (p for (part_layer, _), p in self._partitions.items() if part_layer is layer and p.size)
            return
        for ticker in tickers:
            partition = self._partitions.get((layer, ticker))
            if partition is not None and partition.size:
                yield partition

    def search(
        self, query_unit: NDArray[np.float32], *, layer: Layer, ticker: str | None, as_of_epoch: float, k: int
    ) -> list[Scored]:
        """Exact top-``k`` of ``layer`` by combined score among items public at ``as_of_epoch``."""
        dynamics = self._config.dynamics[layer]
        tickers = None if ticker is None else dict.fromkeys((ticker, MARKET_TICKER))
        best: list[Scored] = []
        for partition in self._partitions_of(layer, tickers):
            n = partition.size
            eligible = partition.public_epoch[:n] <= as_of_epoch
            if not eligible.any():
                continue
            # The usual case (everything already public) takes views, not fancy-index copies.
            rows: slice | NDArray[np.intp] = slice(0, n) if eligible.all() else np.flatnonzero(eligible)
            relevance = cosines(partition.vectors[rows], query_unit)
            recency_value = recency(days_between(partition.public_epoch[rows], as_of_epoch), dynamics.recency_q_days)
            importance_points = decayed_importance(
                partition.importance[rows],
                dynamics.importance_decay,
                days_between(partition.importance_epoch[rows], as_of_epoch),
            )
            row_ids = np.arange(n)[rows]
            score = combined_score(recency_value, importance_points, relevance)
            for j in top_rows(score, k, lambda j: partition.ids[row_ids[j]]):
                best.append(
                    Scored(
                        item=self.items[partition.ids[row_ids[j]]],
                        score=float(score[j]),
                        recency=float(recency_value[j]),
                        importance_points=float(importance_points[j]),
                        relevance=float(relevance[j]),
                    )
                )
        best.sort(key=lambda s: (-s.score, s.item.id))
        return best[:k]

    def score_ids(self, query_unit: NDArray[np.float32], ids: Iterable[str], as_of_epoch: float) -> list[Scored]:
        """Exact scores of the given items (used to re-rank Chroma's candidates)."""
        scored = []
        for item_id in ids:
            item = self.items.get(item_id)
            if item is None or item.layer is None:
                continue
            dynamics = self._config.dynamics[item.layer]
            assert item.importance_at is not None
            recency_value = float(recency(days_between(epoch_seconds(item.public_at), as_of_epoch), dynamics.recency_q_days))
            importance_points = float(
                decayed_importance(
                    item.importance, dynamics.importance_decay, days_between(epoch_seconds(item.importance_at), as_of_epoch)
                )
            )
            relevance = float(cosines(self.vector(item_id)[None, :], query_unit)[0])
            score = float(combined_score(recency_value, importance_points, relevance))
            scored.append(Scored(item, score, recency_value, importance_points, relevance))
        return scored

    def layer_state(self, layer: Layer, as_of_epoch: float) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64]]:
        """(ids, recency, decayed importance points) of every item in ``layer`` at ``as_of_epoch``."""
        dynamics = self._config.dynamics[layer]
        ids: list[str] = []
        recencies: list[NDArray[np.float64]] = []
        importances: list[NDArray[np.float64]] = []
        for partition in self._partitions_of(layer, None):
            n = partition.size
            ids.extend(partition.ids[:n])
            recencies.append(recency(days_between(partition.public_epoch[:n], as_of_epoch), dynamics.recency_q_days))
            importances.append(
                decayed_importance(
                    partition.importance[:n], dynamics.importance_decay, days_between(partition.importance_epoch[:n], as_of_epoch)
                )
            )
        if not ids:
            return [], np.zeros(0), np.zeros(0)
        return ids, np.concatenate(recencies), np.concatenate(importances)
