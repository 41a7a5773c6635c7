"""Small scenarios for graph tests: the real local model, real ChromaDB, real broker.

The model conversion is cached under the repo's .cache/ (shared with the llm tests), so only the
first test in a fresh clone pays the ~18 s GGUF load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.config import ScenarioConfig, apply_overrides, parse_scenario

REPO = Path(__file__).resolve().parents[2]


def tiny_scenario(tmp_path: Path, **overrides: Any) -> ScenarioConfig:
    """30 warm-up sessions, 6 training, 4 test, one ticker; every model call goes to SmolLM2."""
    raw: dict[str, Any] = {
        "name": "tiny",
        "seed": 3,
        "runs_dir": str(tmp_path / "runs"),
        "cache_dir": str(REPO / ".cache" / "tradegraph"),
        "data": {"kind": "synthetic", "tickers": ["ACME"], "days": 45, "seed": 3, "signal": 0.8, "news_per_day": 1.5},
        "llm": {"backends": {"local": {"kind": "local", "threads": 2}}, "cache": {"mode": "auto"}},
        "episode": {"warmup_days": 30, "train_days": 6, "test_days": 4, "refit_every_days": 5, "reflect_every_days": 3,
                    "bootstrap_judge_sessions": 0},  # the bootstrap judging has its own node test
        "learning": {"min_examples": 4},
    }
    return parse_scenario(apply_overrides(raw, overrides), "tiny scenario")


@pytest.fixture
def tiny(tmp_path: Path):
    return lambda **kw: tiny_scenario(tmp_path, **kw)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished tiny run, shared by the tests that only read its folder (end-to-end, report)."""
    from agents.runtime import execute

    config = tiny_scenario(tmp_path_factory.mktemp("tiny-run"))
    outcome = execute(config, resume=False, progress=False)
    return config, outcome
