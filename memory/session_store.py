"""A memory that forgets at every session: the "no memory" ablation (``memory.enabled: false``).

It implements the ``MemoryStore`` port, so the graph runs unchanged: items added during a session
can be read back with ``get`` (the direction agent reads the items its analysts judged today), but
``query`` retrieves nothing, feedback moves nothing, and ``step_day`` forgets everything.

It lives in the process only: a run resumed in the middle of a session has forgotten that
session's items too, so an ablation run killed mid-session resumes, but not bit for bit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from memory.base import Layer, MemoryItem, MemoryMove, ScoredMemory, recent_items
from memory.config import MemoryConfig


class SessionMemoryStore:
    """Holds only the current session's items (see the module docstring)."""

    def __init__(self, config: MemoryConfig) -> None:
        self.config = config
        self._items: dict[str, MemoryItem] = {}

    def add(self, items: Sequence[MemoryItem], as_of: dt.datetime) -> list[str]:
        for item in items:
            if item.id not in self._items:
                layer = item.layer or self.config.routing[item.source_type]
                self._items[item.id] = item.model_copy(update={"layer": layer, "created_at": as_of, "updated_at": as_of})
        return [item.id for item in items]

    def query(
        self,
        text: str,
        *,
        ticker: str | None,
        as_of: dt.datetime,
        k_per_layer: int | dict[Layer, int] | None = None,
        layers: Sequence[Layer] | None = None,
        query_embedding: Sequence[float] | None = None,
    ) -> list[ScoredMemory]:
        return []

    def feedback(self, item_ids: Sequence[str], reward: float, as_of: dt.datetime) -> list[MemoryMove]:
        return []

    def feedback_many(self, batch: Sequence[tuple[Sequence[str], float]], as_of: dt.datetime) -> list[MemoryMove]:
        return []

    def step_day(self, as_of: dt.datetime) -> list[MemoryMove]:
        self._items.clear()
        return []

    def get(self, ids: Sequence[str]) -> list[MemoryItem]:
        return [self._items[i] for i in ids if i in self._items]

    def recent(self, *, ticker: str, since: dt.datetime, as_of: dt.datetime, source_types: Sequence[str] | None = None) -> list[MemoryItem]:
        """This session's items of ``ticker`` public in ``(since, as_of]``: without memory nothing older is known."""
        return recent_items(list(self._items.values()), ticker=ticker, since=since, as_of=as_of, source_types=source_types)

    def count(self, layer: Layer | None = None) -> int:
        return sum(1 for item in self._items.values() if layer is None or item.layer == layer)

    def close(self) -> None:
        self._items.clear()
