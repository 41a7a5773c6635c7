"""The LLM layer: one interface (``LLM``), three backends (local, openai, vllm), record/replay, accounting.

Importing this package is cheap: torch, transformers and langchain are imported only when a
backend is created.
"""

from .accounting import Accounting, AccountingState, UsageTotals
from .base import LLM, CallRecord, ChatMessage, ChoiceRequest, ChoiceResult, StructuredResult, TextResult
from .cache import LLMCache
from .client import LLMClient
from .config import (
    BudgetConfig,
    CacheMode,
    LLMCacheConfig,
    LLMConfig,
    LocalBackendConfig,
    ModelPrice,
    OpenAIBackendConfig,
    RetryConfig,
    VLLMBackendConfig,
    VLLMServeConfig,
)
from .factory import LLMPool, make_accounting, make_llm, open_cache

__all__ = [
    "LLM",
    "Accounting",
    "AccountingState",
    "BudgetConfig",
    "CacheMode",
    "CallRecord",
    "ChatMessage",
    "ChoiceRequest",
    "ChoiceResult",
    "LLMCache",
    "LLMCacheConfig",
    "LLMClient",
    "LLMConfig",
    "LLMPool",
    "LocalBackendConfig",
    "ModelPrice",
    "OpenAIBackendConfig",
    "RetryConfig",
    "StructuredResult",
    "TextResult",
    "UsageTotals",
    "VLLMBackendConfig",
    "VLLMServeConfig",
    "make_accounting",
    "make_llm",
    "open_cache",
]
