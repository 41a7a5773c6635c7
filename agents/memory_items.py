"""Build memory items from what analysts and reflection produce (the agents' side of the memory port)."""

from __future__ import annotations

import datetime as dt

from memory.base import MemoryItem


def make_memory_item(
    *,
    text: str,
    ticker: str,
    source_type: str,
    source_id: str,
    url: str,
    event_date: dt.date,
    public_at: dt.datetime,
    reason: str,
    relevance: float,
    impact: str,
    impact_score: float,
    as_of: dt.datetime,
) -> MemoryItem:
    """A memory item with a deterministic id; the store routes it to a layer by ``source_type``."""
    return MemoryItem.create(
        text=text,
        ticker=ticker,
        source_type=source_type,
        source_id=source_id,
        url=url,
        event_date=event_date,
        public_at=public_at,
        reason=reason,
        relevance=relevance,
        impact=impact,
        impact_score=impact_score,
        as_of=as_of,
    )
