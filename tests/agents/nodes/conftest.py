"""Fast node tests: each node factory run on its own, with a ``ScriptedLLM`` for every agent, the
session-only memory, the real broker, journal, tracer and synthetic market. No model loads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents.config import ScenarioConfig
from agents.deps import Deps
from agents.llm.scripted import ProbScript, ScriptedLLM
from agents.runtime import build_deps, initial_state, load_data, schedule_for
from agents.state import AgentName, RunState
from agents.trace import read_traces
from env.market import MarketData
from tests.agents.conftest import tiny_scenario


@dataclass
class NodeKit:
    config: ScenarioConfig
    data: MarketData
    deps: Deps
    llm: ScriptedLLM
    run_dir: Path

    def state(self, **fields: Any) -> RunState:
        """The run's initial state, with ``fields`` replaced."""
        base = initial_state(self.config, self.data, schedule_for(self.config, self.data), "node-test")
        return base.model_copy(update=fields)

    def traces(self, node: str) -> list[dict[str, Any]]:
        return [r for r in read_traces(self.run_dir) if r["node"] == node]


def make_kit(tmp_path: Path, probs: ProbScript | None = None, **overrides: Any) -> tuple[NodeKit, Any]:
    defaults = {"learning.enabled": False, "memory.enabled": False}
    config = tiny_scenario(tmp_path, **{**defaults, **overrides})
    data = load_data(config)
    run_dir = tmp_path / "run"
    run_dir.mkdir(parents=True)
    llm = ScriptedLLM(probs)
    deps, close = build_deps(config, data, run_dir, run_id="node-test", llms={a: llm for a in AgentName})
    return NodeKit(config, data, deps, llm, run_dir), close


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Any]:
    """``kit(probs=None, **overrides) -> NodeKit``; everything it opened is closed after the test."""
    closers = []

    def factory(probs: ProbScript | None = None, **overrides: Any) -> NodeKit:
        made, close = make_kit(tmp_path / f"k{len(closers)}", probs, **overrides)
        closers.append(close)
        return made

    yield factory
    for close in closers:
        close()
