"""Configuration of the layered memory (the ``memory`` part of the scenario schema).

Defaults follow FinMem's shipped config: recency half-widths Q (days) shallow 3, intermediate 90,
deep 365 and daily importance decay 0.92, 0.967, 0.988. The reflection layer is our addition; it
uses the deep layer's slow dynamics (Q 365, decay 0.988) because lessons should outlive news.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from env.records import SourceType
from memory.base import Layer


class LayerDynamics(BaseModel):
    """How fast one layer forgets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recency_q_days: float = Field(gt=0.0, description="Q in recency = exp(-age_days / Q).")
    importance_decay: float = Field(gt=0.0, le=1.0, description="Daily factor: importance_t = importance_0 * decay^days.")


class ChromaServerConfig(BaseModel):
    """Address of a running Chroma server (``chroma run --host H --port P``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, description="Server host name or IP address.")
    port: int = Field(ge=1, le=65535, description="Server TCP port.")


def _default_routing() -> dict[SourceType, Layer]:
    return {
        SourceType.NEWS: Layer.SHALLOW,
        SourceType.TECHNICAL: Layer.SHALLOW,
        SourceType.FILING_8K: Layer.INTERMEDIATE,
        SourceType.MACRO: Layer.INTERMEDIATE,
        SourceType.FILING_10Q: Layer.DEEP,
        SourceType.FILING_10K: Layer.DEEP,
        SourceType.REFLECTION: Layer.REFLECTION,
    }


def _default_dynamics() -> dict[Layer, LayerDynamics]:
    return {
        Layer.SHALLOW: LayerDynamics(recency_q_days=3.0, importance_decay=0.92),
        Layer.INTERMEDIATE: LayerDynamics(recency_q_days=90.0, importance_decay=0.967),
        Layer.DEEP: LayerDynamics(recency_q_days=365.0, importance_decay=0.988),
        Layer.REFLECTION: LayerDynamics(recency_q_days=365.0, importance_decay=0.988),
    }


def _default_initial_importance() -> dict[Layer, float]:
    return {Layer.SHALLOW: 50.0, Layer.INTERMEDIATE: 65.0, Layer.DEEP: 85.0, Layer.REFLECTION: 80.0}


class LayerThresholds(BaseModel):
    """Importance thresholds (points, 0-100) for moving between layers, with hysteresis.

    An item is promoted when its importance reaches ``promote_*`` and demoted only when it falls
    below the lower ``demote_*``, so an item near a threshold does not bounce every day.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    promote_to_intermediate: float = Field(default=60.0, ge=0.0, le=100.0, description="shallow -> intermediate at >= this.")
    promote_to_deep: float = Field(default=80.0, ge=0.0, le=100.0, description="intermediate -> deep at >= this.")
    demote_to_shallow: float = Field(default=50.0, ge=0.0, le=100.0, description="intermediate -> shallow below this.")
    demote_to_intermediate: float = Field(default=70.0, ge=0.0, le=100.0, description="deep -> intermediate below this.")

    @model_validator(mode="after")
    def _hysteresis(self) -> LayerThresholds:
        if not self.demote_to_shallow < self.promote_to_intermediate:
            raise ValueError("thresholds.demote_to_shallow must be below thresholds.promote_to_intermediate")
        if not self.demote_to_intermediate < self.promote_to_deep:
            raise ValueError("thresholds.demote_to_intermediate must be below thresholds.promote_to_deep")
        if not self.promote_to_intermediate <= self.promote_to_deep:
            raise ValueError("thresholds.promote_to_intermediate must not exceed thresholds.promote_to_deep")
        if not self.demote_to_shallow <= self.demote_to_intermediate:
            raise ValueError("thresholds.demote_to_shallow must not exceed thresholds.demote_to_intermediate")
        return self


class MemoryConfig(BaseModel):
    """Everything the memory store needs; composed into the scenario config by ``agents/config.py``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True,
        description="Keep a long-term memory. False is the 'no memory' ablation: the direction agent sees only the items "
        "judged in the current session; nothing persists, is promoted, demoted or fed back, and lessons are not stored.",
    )
    routing: dict[SourceType, Layer] = Field(
        default_factory=_default_routing, description="First layer of a new item, by its source type."
    )
    dynamics: dict[Layer, LayerDynamics] = Field(
        default_factory=_default_dynamics, description="Recency Q and importance decay of each layer."
    )
    initial_importance: dict[Layer, float] = Field(
        default_factory=_default_initial_importance,
        description=(
            "Importance (points) of a new item that brings none, by its first layer; the defaults sit "
            "inside each layer's threshold band, so routing is not undone by the first step_day."
        ),
    )
    thresholds: LayerThresholds = Field(default_factory=LayerThresholds, description="Promotion/demotion thresholds.")
    recency_floor: float = Field(
        default=0.05, ge=0.0, le=1.0, description="An item is deleted when its recency is below this ..."
    )
    importance_floor: float = Field(
        default=5.0, ge=0.0, le=100.0, description="... and its decayed importance (points) is below this."
    )
    feedback_scale: float = Field(
        default=500.0,
        gt=0.0,
        description="Importance points per unit of reward (rewards are return-sized: 0.02 * 500 = +10 points).",
    )
    feedback_max_step: float = Field(
        default=20.0, gt=0.0, le=100.0, description="Largest importance change (points) one feedback can make."
    )
    k_per_layer: int = Field(default=5, ge=1, le=1000, description="Default number of results per layer.")
    max_text_chars: int = Field(
        default=4000, ge=16, description="Longer texts are truncated to this many characters (noted on the item)."
    )
    server: ChromaServerConfig | None = Field(
        default=None, description="Chroma server to use; None = an embedded PersistentClient under the run dir."
    )
    embedding_model_path: Path | None = Field(
        default=None, description="Sentence-transformers model folder; None = the all-MiniLM-L6-v2 package's model."
    )
    batch_size: int = Field(default=256, ge=1, le=5000, description="Items per embedding call and per Chroma write.")
    # Left out of the dump at its default (so out of every run id): it changes when Chroma is
    # written, never what is stored or read.
    write_behind: int = Field(
        default=512,
        ge=0,
        le=100_000,
        exclude_if=lambda value: value == 512,
        description="Group commit: item writes kept in <run>/memory/pending_writes.jsonl (SIGKILL-safe) before they are "
        "applied to Chroma in one coalesced write per layer (also on close); 0 writes every call through to Chroma.",
    )
    embedding_cache: bool = Field(
        default=True,
        description="Keep every text's embedding in <cache_dir>/embeddings.sqlite, so replays and resumes do not re-embed "
        "(and get bit-identical vectors).",
    )
    collection_prefix: str = Field(
        default="tradegraph-memory",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,400}$",
        description="Chroma collections are named <prefix>-<layer>; use a per-run prefix on a shared server.",
    )
    retrieval: Literal["exact", "chroma"] = Field(
        default="exact",
        description=(
            "exact: score every eligible item in the in-process index (fast, exact FinMem ranking); "
            "chroma: ask Chroma for the nearest `chroma_candidates` with a `where` filter, then re-rank."
        ),
    )
    chroma_candidates: int = Field(
        default=50, ge=1, le=10000, description="Candidate pool per layer in `chroma` retrieval mode."
    )

    @model_validator(mode="after")
    def _complete(self) -> MemoryConfig:
        missing_layers = [layer.value for layer in Layer if layer not in self.dynamics]
        if missing_layers:
            raise ValueError(f"dynamics: missing layers {missing_layers}; give recency_q_days and importance_decay")
        bad = {layer.value: value for layer, value in self.initial_importance.items() if not 0.0 <= value <= 100.0}
        missing_initial = [layer.value for layer in Layer if layer not in self.initial_importance]
        if bad or missing_initial:
            raise ValueError(f"initial_importance: need a value in [0, 100] for every layer (bad {bad}, missing {missing_initial})")
        if self.routing.get(SourceType.REFLECTION, Layer.REFLECTION) is not Layer.REFLECTION:
            raise ValueError("routing: 'reflection' sources must go to the reflection layer")
        return self

    def k_for(self, layer: Layer, k_per_layer: int | dict[Layer, int] | None) -> int:
        """Results wanted from ``layer`` given a query's ``k_per_layer`` (None = the config default)."""
        if k_per_layer is None:
            return self.k_per_layer
        if isinstance(k_per_layer, int):
            return k_per_layer
        return k_per_layer.get(layer, 0)
