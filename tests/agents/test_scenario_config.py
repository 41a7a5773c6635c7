"""Scenario files: every shipped one validates; bad ones get errors naming field, value and what is allowed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.config import load_scenario, scenario_json_schema
from env.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_validate(path):
    config = load_scenario(path)
    assert config.run_id().startswith(config.name + "-")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_unknown_field_is_named(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_scenario(_write(tmp_path, "name: x\nbroker:\n  comission_bps: 5\n"))
    assert "broker.comission_bps" in str(err.value) and "unknown field" in str(err.value)


def test_bad_value_names_field_value_and_allowed(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_scenario(_write(tmp_path, "broker:\n  fill: tomorrow\n"))
    msg = str(err.value)
    assert "broker.fill" in msg and "tomorrow" in msg and "next_open" in msg and "same_close" in msg


def test_out_of_range_value(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_scenario(_write(tmp_path, "risk:\n  kelly_scale: 3\n"))
    assert "risk.kelly_scale" in str(err.value) and "3" in str(err.value)


def test_unknown_data_kind(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_scenario(_write(tmp_path, "data:\n  kind: bloomberg\n"))
    assert "bloomberg" in str(err.value) and "synthetic" in str(err.value)


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scenario(_write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_scenario(tmp_path / "missing.yaml")


def test_cross_field_rules(tmp_path):
    with pytest.raises(ConfigError, match="adapter_label_horizon_days"):
        load_scenario(_write(tmp_path, "episode:\n  adapter_label_horizon_days: 5\n"))
    with pytest.raises(ConfigError, match="risk.max_position_fraction"):
        load_scenario(_write(tmp_path, "broker:\n  max_position_fraction: 0.2\nrisk:\n  max_position_fraction: 0.5\n"))


def test_run_id_changes_with_config_and_overrides(tmp_path):
    path = _write(tmp_path, "name: demo\nseed: 1\n")
    a = load_scenario(path)
    b = load_scenario(path, {"seed": 2})
    assert a.run_id() != b.run_id() and b.seed == 2
    assert load_scenario(path).run_id() == a.run_id()


def test_exported_schema_is_current():
    exported = json.loads((REPO / "docs" / "scenario.schema.json").read_text())
    assert exported == json.loads(json.dumps(scenario_json_schema(), default=str)), (
        "docs/scenario.schema.json is stale: run `python run.py schema > docs/scenario.schema.json`"
    )


def test_unknown_agent_in_llm_agents_is_an_error_naming_the_agents_regression(tmp_path):
    """``drection: openai`` used to be ignored silently (the run used the default backend)."""
    text = "name: x\nllm:\n  backends:\n    local: {kind: local}\n    api: {kind: openai, model: m}\n  agents:\n    drection: api\n"
    with pytest.raises(ConfigError) as err:
        load_scenario(_write(tmp_path, text))
    assert "drection" in str(err.value) and "direction" in str(err.value) and "news_analyst" in str(err.value)


def test_the_run_seed_seeds_every_section_that_sets_none_regression(tmp_path):
    """``seed`` was documented as seeding every random choice but only seeded the random baseline."""
    config = load_scenario(_write(tmp_path, "name: x\nseed: 11\nllm:\n  backends:\n    local: {kind: local}\n"))
    assert config.data.seed == 11 and config.learning.seed == 11 and config.llm.backends["local"].seed == 11
    pinned = load_scenario(_write(tmp_path, "name: x\nseed: 11\ndata: {kind: synthetic, seed: 4}\nlearning: {seed: 5}\n"))
    assert pinned.data.seed == 4 and pinned.learning.seed == 5
    assert load_scenario(_write(tmp_path, "name: x\nseed: 12\n")).run_id() != config.run_id()


def test_the_featurizer_uses_the_news_analysts_local_backend_not_the_one_named_local_regression(tmp_path):
    """The adapter's hidden states came from the backend literally named ``local``; renaming it
    silently changed the featurizer's model."""
    text = "name: x\nllm:\n  default: small\n  backends:\n    small: {kind: local, threads: 1}\n"
    assert load_scenario(_write(tmp_path, text)).featurizer_backend() == "small"
    two = ("name: x\nllm:\n  default: api\n  backends:\n    a: {kind: local}\n    b: {kind: local}\n"
           "    api: {kind: openai, model: m}\n")
    hidden = "learning: {features: hidden_states}\n"
    with pytest.raises(ConfigError, match="learning.backend"):
        load_scenario(_write(tmp_path, two + hidden))
    assert load_scenario(_write(tmp_path, two + "learning: {features: hidden_states, backend: b}\n")).featurizer_backend() == "b"
    # The default reader (sentence embeddings) needs no local model at all.
    assert load_scenario(_write(tmp_path, two)).learning.features == "embeddings"
