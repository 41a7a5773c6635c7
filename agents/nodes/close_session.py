"""close_session: advance to the next session; the router picks the next session or finish."""

from __future__ import annotations

from collections.abc import Callable

from agents.deps import Deps
from agents.state import NodeName, RunState


def make_close_session(deps: Deps) -> Callable[[RunState], dict]:
    def node(state: RunState) -> dict:
        counters = dict(state.counters)
        counters["sessions"] = counters.get("sessions", 0) + 1
        return {
            "prev_day": state.day,
            "day": state.day + 1,
            "counters": counters,
            "accounting": deps.accounting.state().model_dump(mode="json"),
        }

    node.__name__ = NodeName.CLOSE_SESSION.value
    return node


def route_after_close(state: RunState) -> NodeName:
    """Next session, or finish at the end of the test period."""
    return NodeName.OPEN_SESSION if state.day <= state.end_day else NodeName.FINISH
