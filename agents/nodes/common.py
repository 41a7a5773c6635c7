"""What the bookkeeping nodes share: the trace call, and loading / saving the broker."""

from __future__ import annotations

from typing import Any

from agents.deps import Deps
from agents.journal import Account
from agents.state import NodeName, Phase, RunState
from env.broker import Broker


def account_of(phase: Phase) -> Account:
    """The broker account a phase trades in (the test account stays current once the run is done)."""
    return Account.TRAIN if phase == Phase.TRAIN else Account.TEST


def load_broker(deps: Deps, state: RunState) -> Broker:
    return Broker.from_state_dict(deps.data, state.broker)


def save_broker(deps: Deps, broker: Broker, account: Account) -> dict[str, Any]:
    """Write the broker's new history rows to the journal; return its state without history."""
    deps.journal.write_broker(account, broker.history())
    return broker.state_dict(history=False)


def trace(deps: Deps, state: RunState, node: NodeName, ticker: str = "", *, phase: Phase | None = None, **fields: Any) -> None:
    deps.tracer.write(
        day=state.day, date=str(deps.data.dates[state.day]), phase=(phase or state.phase).value, node=node.value,
        ticker=ticker, **fields,
    )
