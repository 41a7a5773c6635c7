"""What the graph's nodes need, injected at build time (no module-level clients or globals)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agents.prompts import PromptLibrary
from agents.trace import TraceWriter
from env.market import MarketData

if TYPE_CHECKING:
    from agents.adaptation import AdapterHandle
    from agents.config import ScenarioConfig
    from agents.llm.accounting import Accounting
    from agents.llm.base import LLM
    from memory.base import MemoryStore


# Agent names used in `llm.agents` to pick a backend per agent.
AGENT_NAMES = ("news_analyst", "filings_analyst", "macro_analyst", "market_analyst", "direction", "reflection")


@dataclass
class Deps:
    """Everything the nodes use besides the state. Built by ``agents.runtime``, passed to ``build_graph``."""

    config: ScenarioConfig
    data: MarketData
    llms: Mapping[str, LLM]
    memory: MemoryStore
    prompts: PromptLibrary
    tracer: TraceWriter
    adapter: AdapterHandle
    accounting: Accounting
    run_dir: Path

    def llm(self, agent: str) -> LLM:
        return self.llms[agent]
