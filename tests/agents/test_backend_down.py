"""A backend that keeps failing stops the run cleanly, naming it and its last errors; once it is
back, `resume` finishes the run. All agents are on the scripted loopback server (tests/llm/openai_stub.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agents.runtime import execute, load_run_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))
from openai_stub import StubOpenAIServer, completion, error  # noqa: E402

pytestmark = pytest.mark.slow


def test_failing_backend_stops_the_run_then_resume_finishes(tiny):
    with StubOpenAIServer(default=error(503, "upstream overloaded", err_type="server_error")) as stub:
        config = tiny(**{
            "name": "backend-down", "episode.train_days": 2, "episode.test_days": 2,
            "llm.backends.remote": {"kind": "openai", "model": "stub-model", "base_url": stub.base_url,
                                    "api_key_env": None, "timeout_s": 5},
            "llm.default": "remote",
            "llm.retry": {"max_attempts": 2, "base_delay_s": 0.0, "max_consecutive_failures": 3},
        })
        first = execute(config, resume=False, progress=False)
        assert not first.finished and not (first.run_dir / "metrics.json").exists()
        assert "'remote'" in first.message and "HTTP 503" in first.message and "resume" in first.message
        # Stopped after three failed calls (up to three more were in flight in parallel analysts).
        assert 3 * 2 <= len(stub.requests) <= 6 * 2

        stub.default = completion('{"choice": "hold"}')
        again = load_run_config(config.runs_dir, first.run_id)
        second = execute(again, resume=True, progress=False, run_id=first.run_id)
    assert second.finished
    assert "sharpe" in json.loads((second.run_dir / "metrics.json").read_text())
