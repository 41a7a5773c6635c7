"""The whole graph on the default runtime, CTranslate2 float32, against torch eager: the same
decisions and ledger, its answers recorded under its own cache identity and replayed with no model
call, and torch's recording never served to it."""

from __future__ import annotations

import pytest

from agents.runtime import execute
from agents.trace import read_traces
from tests.agents.conftest import tiny_scenario

pytestmark = pytest.mark.slow

TORCH = {"llm.backends.local.runtime": "torch"}


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    config = tiny_scenario(tmp_path_factory.mktemp("torch-run"), **TORCH)
    return config, execute(config, resume=False, progress=False)


def _decisions(run_dir):
    return {(r["day"], r["ticker"]): r for r in read_traces(run_dir) if r["node"] == "direction"}


def test_default_ct2_run_makes_the_torch_runs_decisions(tiny_run, torch_run):
    ct2_config, ct2_outcome = tiny_run
    torch_config, torch_outcome = torch_run
    assert ct2_config.llm.backends["local"].runtime == "ctranslate2" and torch_config.llm.backends["local"].runtime == "torch"
    assert ct2_outcome.finished and torch_outcome.finished and ct2_config.run_id() != torch_config.run_id()
    torch_decisions, ct2_decisions = _decisions(torch_outcome.run_dir), _decisions(ct2_outcome.run_dir)
    assert torch_decisions.keys() == ct2_decisions.keys() and len(ct2_decisions) == 10
    for key, ours in ct2_decisions.items():
        theirs = torch_decisions[key]
        assert ours["decision"] == theirs["decision"], key
        assert list(ours["probs"].values()) == pytest.approx(list(theirs["probs"].values()), abs=1e-3), key
    assert (ct2_outcome.run_dir / "fills.csv").read_text() == (torch_outcome.run_dir / "fills.csv").read_text()
    calls = [c for r in read_traces(ct2_outcome.run_dir) for c in r.get("llm_calls", [])]
    assert calls and all(c["backend"] == "local" for c in calls) and not any(c["cache_hit"] for c in calls)


def test_ct2_answers_replay_with_no_model_call(tiny_run, torch_run, tmp_path):
    _, recorded = tiny_run
    cache = str(recorded.run_dir / "llm_cache.sqlite")
    config = tiny_scenario(tmp_path, **{"llm.cache": {"mode": "replay", "path": cache}})
    replayed = execute(config, resume=False, progress=False)
    assert replayed.finished
    assert sum(r.get("model_calls", 0) for r in read_traces(replayed.run_dir)) == 0
    assert (replayed.run_dir / "fills.csv").read_text() == (recorded.run_dir / "fills.csv").read_text()
    # torch's recording is not the CTranslate2 backend's answers: replaying it under CTranslate2 misses.
    from env.errors import LLMError

    torch_cache = str(torch_run[1].run_dir / "llm_cache.sqlite")
    crossed = tiny_scenario(tmp_path / "crossed", **{"llm.cache": {"mode": "replay", "path": torch_cache}})
    with pytest.raises(LLMError, match="replay miss"):
        execute(crossed, resume=False, progress=False)
