"""The project's exceptions, in one place.

Every package (env, rewards, memory, agents) raises these, so callers can catch
by meaning rather than by library. ``env`` is the bottom layer, which is why the
module lives here: nothing in ``env`` imports from ``agents`` or ``memory``.
"""

from __future__ import annotations


class TradegraphError(Exception):
    """Base class of every error tradegraph raises on purpose."""


class ConfigError(TradegraphError, ValueError):
    """A scenario or config value is invalid. The message names the field and what is allowed."""


class DataError(TradegraphError, ValueError):
    """Market or text data is malformed. The message names the file (or source) and the row."""


class DataUnavailableError(DataError):
    """Data is neither cached nor reachable. The message says what to fetch, and how."""


class LookaheadError(TradegraphError):
    """Code asked a point-in-time view for data that was not public at its decision time."""


class OrderError(TradegraphError, ValueError):
    """An order is malformed (unknown ticker, NaN size, ...). Limit breaches are clipped, not raised."""


class LLMError(TradegraphError):
    """A model call failed in a way that retries and fallbacks cannot fix."""


class LLMConfigError(LLMError, ConfigError):
    """Authentication failed or the model is unknown: the message says which config field to fix."""


class BackendUnavailableError(LLMError):
    """One backend failed too many calls in a row (``llm.retry.max_consecutive_failures``).

    The run stops cleanly with its state at the last checkpoint, so it can be resumed once the
    server is back. ``backend`` is the name in ``llm.backends``; ``errors`` its last errors.
    """

    def __init__(self, backend: str, failures: int, errors: list[str]) -> None:
        self.backend = backend
        self.failures = failures
        self.errors = list(errors)
        last = "; ".join(self.errors) or "no error text"
        super().__init__(f"backend {backend!r} failed {failures} calls in a row (last errors: {last})")


class BudgetExceededError(LLMError):
    """The configured token or dollar budget is spent. The run stops cleanly with its state saved."""


class MemoryStoreError(TradegraphError):
    """The memory store cannot be opened or written (second writer, bad input, corrupt state)."""


class ResumeError(TradegraphError):
    """A run cannot be resumed (unknown run id, config changed since the checkpoint, ...)."""
