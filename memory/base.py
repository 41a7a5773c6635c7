"""The memory domain model: layers, items, scored results, moves, and the ``MemoryStore`` port.

Agents depend on :class:`MemoryStore` only; the Chroma adapter lives in ``memory/chroma_store.py``.
All times are SIMULATED times passed in by the caller (the decision date), never the wall clock,
so two runs over the same data write identical stores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from env.records import SourceType

# Ticker of market-wide items (macro releases, sector news): a query for any ticker also sees them.
MARKET_TICKER = "*"


class Layer(StrEnum):
    """Memory layers, from volatile to stable (FinMem), plus the reflection layer."""

    SHALLOW = "shallow"  # breaking news: forgotten within days unless it proves useful
    INTERMEDIATE = "intermediate"  # 8-K events, macro surprises: months
    DEEP = "deep"  # 10-K / 10-Q facts: years
    REFLECTION = "reflection"  # lessons and beliefs written by the reflection agent; never moves layer


# Order used by promotion (up) and demotion (down). Reflection is outside the ladder.
LADDER: tuple[Layer, ...] = (Layer.SHALLOW, Layer.INTERMEDIATE, Layer.DEEP)


class MoveCause(StrEnum):
    """Why an item changed layer or was deleted."""

    PROMOTION = "promotion"  # importance reached the next layer's promotion threshold
    DEMOTION = "demotion"  # importance fell below the layer's demotion threshold
    EXPIRY = "expiry"  # recency and importance both fell below their floors: deleted
    REPAIR = "repair"  # an interrupted move (crash) was completed when the store was reopened


def make_item_id(ticker: str, source_type: SourceType | str, source_id: str, text: str) -> str:
    """Deterministic item id: sha256 of ticker, source type, source id and text (unit-separator joined)."""
    payload = "\x1f".join((ticker, str(source_type), source_id, text))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _aware_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("must be timezone-aware (got a naive datetime); attach a timezone, e.g. UTC")
    return value.astimezone(dt.timezone.utc)


class MemoryItem(BaseModel):
    """One memory: a piece of text an analyst judged worth remembering, with its annotations.

    ``id`` is derived from ``ticker``, ``source_type``, ``source_id`` and ``text`` (leave it out; if
    given it must match). ``text`` may be given as UTF-8 ``bytes``: invalid bytes are replaced by
    U+FFFD and a note is recorded in ``notes`` (a safe fallback rather than losing the item).
    ``layer``, ``created_at``, ``updated_at`` and ``importance_at`` are set by the store when the item
    is added (``layer`` from the source-type routing map unless given).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="sha256 of ticker, source_type, source_id and text (see make_item_id).")
    text: str = Field(min_length=1, description="The remembered text (non-blank).")
    ticker: str = Field(min_length=1, description=f"Ticker the memory is about; {MARKET_TICKER!r} = market-wide.")
    source_type: SourceType = Field(description="Kind of source; routes the item to its first layer.")
    source_id: str = Field(default="", description="Id of the source record (news id, filing id, ...).")
    url: str = Field(default="", description="Link to the source, if any.")
    event_date: dt.date | None = Field(default=None, description="Date the content refers to, if known.")
    public_at: dt.datetime = Field(description="When the content became public (aware, stored as UTC).")
    layer: Layer | None = Field(default=None, description="Current layer; None = route by source type on add.")
    importance: float | None = Field(
        default=None,
        ge=0.0,
        le=100.0,
        description="Importance in points at importance_at; None = the layer's configured initial importance.",
    )
    importance_at: dt.datetime | None = Field(
        default=None, description="Simulated time at which `importance` holds; it decays from there."
    )
    access_count: int = Field(default=0, ge=0, description="How many decisions received feedback for this item.")
    reason: str = Field(default="", description="The analyst's reason for remembering it.")
    relevance_prob: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Analyst's probability that the item is relevant to the ticker."
    )
    impact_label: str | None = Field(default=None, description="Analyst's impact label (e.g. positive/negative).")
    impact_score: float | None = Field(
        default=None, ge=-1.0, le=1.0, description="Analyst's signed impact score in [-1, 1]."
    )
    created_at: dt.datetime | None = Field(default=None, description="Simulated time the item was first stored.")
    updated_at: dt.datetime | None = Field(default=None, description="Simulated time of the last write.")
    revision: int = Field(default=0, ge=0, description="Write counter; the highest revision wins after a crash.")
    notes: tuple[str, ...] = Field(default=(), description="Recorded fallbacks (text truncated, bytes replaced).")

    @model_validator(mode="before")
    @classmethod
    def _decode_and_identify(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        text = data.get("text")
        if isinstance(text, bytes | bytearray):
            try:
                data["text"] = bytes(text).decode("utf-8")
            except UnicodeDecodeError as err:
                data["text"] = bytes(text).decode("utf-8", errors="replace")
                note = f"text: invalid UTF-8 bytes (first at byte {err.start}) replaced by U+FFFD"
                data["notes"] = (*data.get("notes", ()), note)
        text = data.get("text")
        if isinstance(text, str) and not text.strip():
            raise ValueError("text: must contain non-whitespace characters (got an empty or blank text)")
        if "id" not in data and isinstance(text, str):
            try:
                source_type = SourceType(data.get("source_type"))
            except ValueError:
                return data  # the field validator reports the bad source_type by name
            data["id"] = make_item_id(str(data.get("ticker", "")), source_type, str(data.get("source_id", "")), text)
        return data

    _utc_public = field_validator("public_at")(_aware_utc)
    _utc_optional = field_validator("importance_at", "created_at", "updated_at")(_aware_utc)


class ScoredMemory(BaseModel):
    """A retrieved memory and its score parts: ``score = recency + importance + relevance``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: MemoryItem = Field(description="The stored item.")
    score: float = Field(description="recency + importance + relevance.")
    recency: float = Field(ge=0.0, le=1.0, description="exp(-age_days / Q_layer), age from public_at.")
    importance: float = Field(ge=0.0, le=1.0, description="Decayed importance at query time, divided by 100.")
    relevance: float = Field(ge=-1.0, le=1.0, description="Cosine similarity between the query and the item.")


class MemoryMove(BaseModel):
    """A layer change or deletion, returned by ``feedback`` / ``step_day`` and written to the audit log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: str = Field(description="Id of the moved item.")
    from_layer: Layer = Field(description="Layer before the move.")
    to_layer: Layer | None = Field(description="Layer after the move; None = deleted.")
    cause: MoveCause = Field(description="Why it moved.")
    detail: str = Field(description="Human-readable reason with the numbers that triggered it.")
    as_of: dt.datetime = Field(description="Simulated time of the move.")
    importance_before: float = Field(ge=0.0, le=100.0, description="Decayed importance before the move.")
    importance_after: float = Field(ge=0.0, le=100.0, description="Importance after the move.")


def recent_items(
    items: Iterable[MemoryItem], *, ticker: str, since: dt.datetime, as_of: dt.datetime, source_types: Sequence[str] | None = None
) -> list[MemoryItem]:
    """The items of ``ticker`` with ``since < public_at <= as_of`` (and a wanted source type), oldest first."""
    since, as_of = _aware_utc(since), _aware_utc(as_of)
    wanted = None if source_types is None else {str(SourceType(t)) for t in source_types}
    found = [
        item for item in items
        if item.ticker == ticker and since < item.public_at <= as_of and (wanted is None or str(item.source_type) in wanted)
    ]
    return sorted(found, key=lambda item: (item.public_at, item.id))


@runtime_checkable
class MemoryStore(Protocol):
    """The memory port the agents use. All times are simulated decision times (aware UTC)."""

    def add(self, items: Sequence[MemoryItem], as_of: dt.datetime) -> list[str]:
        """Store items (idempotent by id: re-adding a stored id changes nothing); returns their ids."""
        ...

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
        """Top-k per layer of items public at ``as_of``, merged, de-duplicated, best first."""
        ...

    def feedback(self, item_ids: Sequence[str], reward: float, as_of: dt.datetime) -> list[MemoryMove]:
        """Raise (reward > 0) or lower (< 0) the importance of items used in a decision."""
        ...

    def feedback_many(self, batch: Sequence[tuple[Sequence[str], float]], as_of: dt.datetime) -> list[MemoryMove]:
        """``feedback`` for each ``(item_ids, reward)`` in order, written at once."""
        ...

    def step_day(self, as_of: dt.datetime) -> list[MemoryMove]:
        """Apply decay-driven demotion, promotion and expiry at the end of a simulated day."""
        ...

    def get(self, ids: Sequence[str]) -> list[MemoryItem]:
        """Stored items for the ids that exist, in the order asked."""
        ...

    def recent(self, *, ticker: str, since: dt.datetime, as_of: dt.datetime, source_types: Sequence[str] | None = None) -> list[MemoryItem]:
        """Items of ``ticker`` made public in ``(since, as_of]`` (of ``source_types`` if given), oldest first."""
        ...

    def count(self, layer: Layer | None = None) -> int:
        """Number of stored items, in one layer or in all."""
        ...

    def close(self) -> None:
        """Release the writer lock and the client."""
        ...
