"""Layered vector memory (FinMem style) behind the ``MemoryStore`` port; ChromaDB adapter."""

from memory.base import (
    MARKET_TICKER,
    Layer,
    MemoryItem,
    MemoryMove,
    MemoryStore,
    MoveCause,
    ScoredMemory,
    make_item_id,
)
from memory.chroma_store import ChromaMemoryStore
from memory.config import ChromaServerConfig, LayerDynamics, LayerThresholds, MemoryConfig
from memory.factory import make_chroma_client, make_embedding_function, open_memory

__all__ = [
    "MARKET_TICKER",
    "ChromaMemoryStore",
    "ChromaServerConfig",
    "Layer",
    "LayerDynamics",
    "LayerThresholds",
    "MemoryConfig",
    "MemoryItem",
    "MemoryMove",
    "MemoryStore",
    "MoveCause",
    "ScoredMemory",
    "make_chroma_client",
    "make_embedding_function",
    "make_item_id",
    "open_memory",
]
