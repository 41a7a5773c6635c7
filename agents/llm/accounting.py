"""Token, latency and cost accounting, with a run-wide budget.

Budget semantics (chosen because token counts of a remote call are only known after it):
a call is refused *before* it starts when the totals have already reached a limit, and
the call that pushes the totals past a limit raises ``BudgetExceededError`` *right after*
it returns, with its record already counted and its result attached as ``error.result``
so the graph can keep it while saving state. Cache hits cost nothing and never trip the
budget. ``state()`` / ``Accounting.from_state`` let a resumed run continue the totals.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from env.errors import BudgetExceededError

from .base import CallRecord
from .config import BudgetConfig, ModelPrice


class UsageTotals(BaseModel):
    """Sums over a set of calls."""

    model_config = ConfigDict(extra="forbid")

    calls: int = Field(default=0, ge=0, description="Calls made (model calls and cache hits).")
    cache_hits: int = Field(default=0, ge=0, description="Calls served from the cache.")
    fallbacks: int = Field(default=0, ge=0, description="Calls that returned the declared fallback.")
    attempts: int = Field(default=0, ge=0, description="Model requests, including retries.")
    tokens_in: int = Field(default=0, ge=0, description="Prompt tokens of model calls.")
    tokens_out: int = Field(default=0, ge=0, description="Generated tokens of model calls.")
    cost_usd: float = Field(default=0.0, ge=0, description="Estimated cost of model calls.")
    latency_s: float = Field(default=0.0, ge=0, description="Summed wall time of all calls.")

    @property
    def tokens(self) -> int:
        """Tokens in + out."""
        return self.tokens_in + self.tokens_out

    def add(self, record: CallRecord) -> None:
        """Count one call."""
        self.calls += 1
        self.cache_hits += int(record.cache_hit)
        self.fallbacks += int(record.fallback)
        self.latency_s += record.latency_s
        if not record.cache_hit:
            self.attempts += record.attempts
            self.tokens_in += record.tokens_in
            self.tokens_out += record.tokens_out
            self.cost_usd += record.cost_usd


class AccountingState(BaseModel):
    """Serialisable accounting totals (run-wide and per agent)."""

    model_config = ConfigDict(extra="forbid")

    total: UsageTotals = Field(default_factory=UsageTotals, description="Run-wide totals.")
    per_agent: dict[str, UsageTotals] = Field(default_factory=dict, description="Totals per agent.")


class Accounting:
    """Counts every call and enforces the budget. Thread-safe; share one per run."""

    def __init__(
        self,
        budget: BudgetConfig | None = None,
        prices: dict[str, ModelPrice] | None = None,
        state: AccountingState | None = None,
    ) -> None:
        self.budget = budget or BudgetConfig()
        self.prices = dict(prices or {})
        self._state = state.model_copy(deep=True) if state is not None else AccountingState()
        self._lock = threading.Lock()

    @classmethod
    def from_state(
        cls, state: AccountingState | dict[str, Any], budget: BudgetConfig | None = None,
        prices: dict[str, ModelPrice] | None = None,
    ) -> Accounting:
        """Continue the totals of a saved run."""
        return cls(budget, prices, AccountingState.model_validate(state))

    def state(self) -> AccountingState:
        """A copy of the totals, for checkpoints."""
        with self._lock:
            return self._state.model_copy(deep=True)

    @property
    def total(self) -> UsageTotals:
        """Run-wide totals (a copy)."""
        return self.state().total

    def per_agent(self, agent: str) -> UsageTotals:
        """Totals of one agent (a copy; zeros if it made no call)."""
        return self.state().per_agent.get(agent, UsageTotals())

    def cost_usd(self, model: str, tokens_in: int, tokens_out: int) -> float:
        """Estimated cost from the price table; models without a price cost 0."""
        price = self.prices.get(model)
        if price is None:
            return 0.0
        return tokens_in / 1000 * price.input_per_1k + tokens_out / 1000 * price.output_per_1k

    def _over_budget(self, total: UsageTotals) -> str | None:
        if self.budget.max_tokens is not None and total.tokens >= self.budget.max_tokens:
            return f"token budget spent: {total.tokens} >= llm.budget.max_tokens={self.budget.max_tokens}"
        if self.budget.max_usd is not None and total.cost_usd >= self.budget.max_usd:
            return f"dollar budget spent: ${total.cost_usd:.4f} >= llm.budget.max_usd={self.budget.max_usd}"
        return None

    def check(self, agent: str) -> None:
        """Raise ``BudgetExceededError`` before a model call if a limit is already reached."""
        with self._lock:
            reason = self._over_budget(self._state.total)
        if reason is not None:
            raise BudgetExceededError(f"agent {agent!r} cannot call the model: {reason}")

    def add(self, record: CallRecord, result: object | None = None) -> None:
        """Count ``record``; raise ``BudgetExceededError`` (with ``.result``) if it crossed a limit."""
        with self._lock:
            total = self._state.total
            before = self._over_budget(total)
            total.add(record)
            self._state.per_agent.setdefault(record.agent, UsageTotals()).add(record)
            after = self._over_budget(total)
        if before is None and after is not None:
            error = BudgetExceededError(f"agent {record.agent!r} crossed the budget: {after}")
            error.result = result  # type: ignore[attr-defined]  # the paid-for answer, for the checkpoint
            raise error
