"""The graph's one typed state, and the enums that name actions, analysts, agents, phases and nodes.

Nodes return partial updates. Per-session fields are reset by ``open_session``; analyst reports
from the parallel fan-out merge through the ``merge_reports`` reducer. Everything here is plain
data (JSON-able through pydantic) so LangGraph's checkpointer can persist it after every step.

The state holds only what the next session needs, and nothing in it grows with the run: the broker
without its history, the reward trackers' pending decisions, this session's reports and decisions,
bounded windows. Histories (orders, fills, daily equity, training examples, decisions waiting for
their reward, lessons) go to the run's journal (``agents.journal``), keyed by session.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class Action(StrEnum):
    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


class AnalystKind(StrEnum):
    NEWS = "news"
    FILINGS = "filings"
    MACRO = "macro"
    MARKET = "market"


class AgentName(StrEnum):
    """The agents that talk to an LLM; ``llm.agents`` maps these names to backends."""

    NEWS_ANALYST = "news_analyst"
    FILINGS_ANALYST = "filings_analyst"
    MACRO_ANALYST = "macro_analyst"
    MARKET_ANALYST = "market_analyst"
    DIRECTION = "direction"
    REFLECTION = "reflection"
    # FinRL-DeepSeek's scorers (agents.rl.deepseek): not graph nodes, but routable like the others.
    DEEPSEEK_RECOMMENDATION = "deepseek_recommendation"
    DEEPSEEK_RISK = "deepseek_risk"


class Phase(StrEnum):
    TRAIN = "train"
    TEST = "test"
    DONE = "done"


class NodeName(StrEnum):
    OPEN_SESSION = "open_session"
    REWARD = "reward"
    REFLECT = "reflect"
    NEWS_ANALYST = "news_analyst"
    FILINGS_ANALYST = "filings_analyst"
    MACRO_ANALYST = "macro_analyst"
    MARKET_ANALYST = "market_analyst"
    DIRECTION = "direction"
    RISK = "risk"
    EXECUTE = "execute"
    CLOSE_SESSION = "close_session"
    FINISH = "finish"


ANALYST_AGENTS: dict[AnalystKind, AgentName] = {
    AnalystKind.NEWS: AgentName.NEWS_ANALYST,
    AnalystKind.FILINGS: AgentName.FILINGS_ANALYST,
    AnalystKind.MACRO: AgentName.MACRO_ANALYST,
    AnalystKind.MARKET: AgentName.MARKET_ANALYST,
}

ANALYST_NODES: dict[AnalystKind, NodeName] = {
    AnalystKind.NEWS: NodeName.NEWS_ANALYST,
    AnalystKind.FILINGS: NodeName.FILINGS_ANALYST,
    AnalystKind.MACRO: NodeName.MACRO_ANALYST,
    AnalystKind.MARKET: NodeName.MARKET_ANALYST,
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemJudgement(_Model):
    """An analyst's verdict on one text item (its one-sentence reason goes to the trace and the memory item)."""

    item_id: str
    source_type: str
    probs: dict[str, float] = Field(description="positive/negative/neutral/irrelevant probabilities (calibrated).")
    relevance: float = Field(description="1 - P(irrelevant).")
    impact: str = Field(description="The most likely of positive/negative/neutral.")
    impact_score: float = Field(description="P(positive) - P(negative), in [-1, 1].")
    adapter_p_up: float | None = Field(None, description="The reward-adapted head's P(up), if fitted.")
    stored: bool
    memory_id: str | None = None
    fallback: bool = False


class AnalystReport(_Model):
    """What one analyst found for one ticker in one session."""

    analyst: AnalystKind
    ticker: str
    day: int
    judgements: list[ItemJudgement] = Field(default_factory=list)
    trend_probs: dict[str, float] | None = None
    summary: str = ""
    skipped: int = 0


class DirectionDecision(_Model):
    """The direction agent's call on one ticker (its rationale and evidence parts go to the trace)."""

    ticker: str
    action: Action
    probs: dict[str, float]
    p_up: float = Field(description="P(buy) / (P(buy) + P(sell)): 0.5 is no edge.")
    news_p_up: float = Field(0.5, description="The news signal alone: P(up) from the memories' evidence.")
    memory_ids: list[str] = Field(default_factory=list, description="Memories the decision used (for feedback and reflection).")


class SizedOrder(_Model):
    ticker: str
    action: Action
    prev_weight: float
    target_weight: float
    kelly_fraction: float
    payoff_ratio: float
    cvar: float
    p_win: float = Field(0.5, description="P(win) Kelly used: the window's up share shifted by the direction edge.")
    caps: list[str] = Field(default_factory=list, description="Which limits bound the size, in order applied.")


class PendingDecision(_Model):
    """What a decision relied on, kept in the journal until its reward matures (for memory feedback
    and reflection)."""

    ticker: str
    index: int
    action: Action
    memory_ids: list[str]


class MaturedPart(_Model):
    """One horizon's reward part of a decision, kept until the next reflection reads it."""

    decision_id: str
    ticker: str
    decision_index: int
    horizon: int
    reward_part: float
    partial_reward: float
    momentum_part: float
    action: Action
    complete: bool


class Example(_Model):
    """A training example for the reward adapter: a text and the momentum that followed it."""

    text: str
    outcome: float
    index: int
    item_id: str = Field("", description="The news item's id, to join the analyst's judgement of it (journal.judgements).")


Reports = dict[AnalystKind, dict[str, AnalystReport]]


def merge_reports(left: Reports, right: Reports | None) -> Reports:
    """Parallel analysts add their reports (one kind each, by ticker); ``None`` (sent by
    open_session) clears the session's reports."""
    if right is None:
        return {}
    return {**left, **right}


class RunState(_Model):
    """The whole run. ``day`` is the session being decided (its close); phases switch at ``test_start``."""

    run_id: str
    day: int
    first_day: int
    test_start: int
    end_day: int
    phase: Phase = Phase.TRAIN
    prev_day: int = -1
    broker: dict[str, Any] = Field(
        default_factory=dict, description="The current account without its history (Broker.state_dict(history=False)).",
    )
    rewards: dict[str, Any] = Field(default_factory=dict, description="Reward tracker: decisions whose horizons have not all matured.")
    reports: Annotated[Reports, merge_reports] = Field(default_factory=dict, description="This session's analyst reports.")
    decisions: dict[str, DirectionDecision] = Field(default_factory=dict, description="This session's decisions by ticker.")
    orders: dict[str, SizedOrder] = Field(default_factory=dict, description="This session's sized orders by ticker.")
    matured_buffer: list[MaturedPart] = Field(
        default_factory=list, description="Reward parts matured since the last reflection (bounded by the reflection cadence)."
    )
    label_rewards: dict[str, Any] = Field(default_factory=dict, description="Tracker of the adapter's short-horizon label reward.")
    adapter_version: int = -1
    calibration: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Running means of the LLM's answers per agent and ticker (batch calibration)."
    )
    beliefs: dict[str, str] = Field(default_factory=dict, description="Episode-end belief updates (train, test).")
    counters: dict[str, float] = Field(default_factory=dict)
    accounting: dict[str, Any] = Field(default_factory=dict, description="LLM usage totals (agents.llm.accounting state).")

    def report(self, kind: AnalystKind, ticker: str) -> AnalystReport | None:
        """This session's report of one analyst on one ticker, if it ran."""
        return self.reports.get(kind, {}).get(ticker)
