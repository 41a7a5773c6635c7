"""What the graph's nodes need, injected at build time (no module-level clients or globals)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agents.journal import RunJournal
from agents.prompts import PromptLibrary
from agents.state import AgentName
from agents.trace import TraceWriter
from env.market import MarketData

if TYPE_CHECKING:
    from agents.adaptation import AdapterHandle
    from agents.config import ScenarioConfig
    from agents.llm.accounting import Accounting
    from agents.llm.base import LLM
    from memory.base import MemoryStore


@dataclass
class Deps:
    """Everything the nodes use besides the state. Built by ``agents.runtime``, passed to ``build_graph``."""

    config: ScenarioConfig
    data: MarketData
    llms: Mapping[AgentName, LLM]
    memory: MemoryStore
    prompts: PromptLibrary
    tracer: TraceWriter
    adapter: AdapterHandle
    accounting: Accounting
    journal: RunJournal
    run_dir: Path

    def llm(self, agent: AgentName | str) -> LLM:
        return self.llms[AgentName(agent)]
