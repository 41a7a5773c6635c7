"""finish: the test period's belief update, and orders still pending recorded as unfilled."""

from __future__ import annotations

from collections.abc import Callable

from agents.deps import Deps
from agents.journal import Account
from agents.nodes.common import load_broker, save_broker
from agents.nodes.reflect import belief_update
from agents.state import NodeName, Phase, RunState


def make_finish_node(deps: Deps) -> Callable[[RunState], dict]:
    def node(state: RunState) -> dict:
        broker = load_broker(deps, state)
        broker.expire_pending("end of the test period")
        update: dict = {"phase": Phase.DONE, "broker": save_broker(deps, broker, Account.TEST)}
        if deps.config.episode.reflection:
            text, record, prompt = belief_update(deps, state, Account.TEST, state.test_start, state.end_day)
            update["beliefs"] = {**state.beliefs, "test": text}
            deps.tracer.write(day=state.end_day, date=str(deps.data.dates[state.end_day]), phase=Phase.DONE.value,
                              node=NodeName.FINISH.value, summary=text, prompt=prompt, llm_calls=[record.model_dump(mode="json")])
        return update

    node.__name__ = NodeName.FINISH.value
    return node
