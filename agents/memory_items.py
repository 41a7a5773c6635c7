"""Build memory items from what analysts and reflection produce (the agents' side of the memory port)."""

from __future__ import annotations

import datetime as dt

from env.records import SourceType
from memory.base import MemoryItem


def make_memory_item(
    *,
    text: str,
    ticker: str,
    source_type: str,
    source_id: str,
    url: str,
    event_date: dt.date | None,
    public_at: dt.datetime,
    reason: str,
    relevance: float,
    impact: str,
    impact_score: float,
) -> MemoryItem:
    """A memory item with a deterministic id; the store routes it to a layer by ``source_type``.
    Its created/updated times are stamped by the store with the ``as_of`` given to ``add``."""
    return MemoryItem(
        text=text,
        ticker=ticker,
        source_type=SourceType(source_type),
        source_id=source_id,
        url=url,
        event_date=event_date,
        public_at=public_at,
        reason=reason,
        relevance_prob=min(1.0, max(0.0, relevance)),
        impact_label=impact,
        impact_score=min(1.0, max(-1.0, impact_score)),
    )
