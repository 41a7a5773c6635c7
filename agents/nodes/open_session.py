"""open_session: fill yesterday's orders at today's open, mark at the close, switch phase, age memory."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agents.deps import Deps
from agents.journal import Account
from agents.nodes.common import account_of, load_broker, save_broker, trace
from agents.state import NodeName, Phase, RunState
from env.broker import Broker


def make_open_session(deps: Deps) -> Callable[[RunState], dict]:
    def node(state: RunState) -> dict:
        started = time.perf_counter()
        update: dict[str, Any] = {"reports": None, "decisions": {}, "orders": {}}
        broker = load_broker(deps, state)
        broker.step(state.day)
        phase = state.phase
        if state.phase == Phase.TRAIN and state.day >= state.test_start:
            # Out-of-sample evaluation starts with a fresh account; the training ledger stays in the journal.
            save_broker(deps, broker, Account.TRAIN)
            broker = Broker(deps.data, deps.config.broker)
            broker.step(state.day)
            phase = Phase.TEST
            update["phase"] = phase
        update["broker"] = save_broker(deps, broker, account_of(phase))
        moves = deps.memory.step_day(deps.data.closes_utc[state.day])
        snap = broker.portfolio()
        trace(
            deps, state, NodeName.OPEN_SESSION, phase=phase, equity=snap.equity, cash=snap.cash, weights=snap.weights,
            moves=[m.model_dump(mode="json") for m in moves], latency_s=time.perf_counter() - started,
        )
        return update

    node.__name__ = NodeName.OPEN_SESSION.value
    return node
