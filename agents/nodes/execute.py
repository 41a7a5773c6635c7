"""execute: send target-weight orders to the broker (filled at the next open) and register the
decisions with the reward tracker and the journal."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from agents.deps import Deps
from agents.nodes.common import account_of, load_broker, save_broker, trace
from agents.state import NodeName, PendingDecision, RunState
from env.broker import TargetWeightOrder
from rewards.momentum import DecisionRecord, RewardTracker

TRADE_EPSILON = 1e-12  # weight changes below this are not orders


def decision_id(ticker: str, day: int) -> str:
    return f"{ticker}:{day}"


def make_execute_node(deps: Deps) -> Callable[[RunState], dict]:
    def node(state: RunState) -> dict:
        view = deps.data.view(state.day)
        broker = load_broker(deps, state)
        orders = [
            TargetWeightOrder(t, s.target_weight)
            for t, s in sorted(state.orders.items())
            if abs(s.target_weight - s.prev_weight) > TRADE_EPSILON
        ]
        ids = broker.submit(orders, state.day) if orders else []
        tracker = RewardTracker.from_state_dict(deps.config.rewards, state.rewards) if state.rewards else RewardTracker(deps.config.rewards)
        pending = []
        for ticker, s in state.orders.items():
            key = decision_id(ticker, state.day)
            tracker.record(
                DecisionRecord(
                    decision_id=key, ticker=ticker, index=state.day, price=view.close(ticker),
                    direction=float(np.sign(s.target_weight)), quantity=abs(s.target_weight), cvar=s.cvar,
                )
            )
            dec = state.decisions.get(ticker)
            pending.append((key, PendingDecision(ticker=ticker, index=state.day, action=s.action, memory_ids=dec.memory_ids if dec else [])))
        deps.journal.add_decisions(pending)
        trace(deps, state, NodeName.EXECUTE, order_ids=ids, orders=[o._asdict() for o in orders])
        return {"broker": save_broker(deps, broker, account_of(state.phase)), "rewards": tracker.state_dict()}

    node.__name__ = NodeName.EXECUTE.value
    return node
