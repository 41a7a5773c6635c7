"""``run.py backtest --strategy <rl>`` in-process: trains on the scenario, writes --out, rejects bad input."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

import run

REPO = Path(__file__).resolve().parents[2]


def write_scenario(tmp_path: Path) -> Path:
    raw = {
        "name": "clirl", "runs_dir": str(tmp_path / "runs"), "cache_dir": str(REPO / ".cache" / "tradegraph"),
        "data": {"kind": "synthetic", "tickers": ["ACME"], "days": 80, "seed": 4, "signal": 0.8, "news_per_day": 1.0},
        "episode": {"warmup_days": 40, "train_days": 20, "test_days": 20},
    }
    path = tmp_path / "clirl.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_backtest_trains_an_rl_strategy_and_writes_outputs(tmp_path: Path, capsys) -> None:
    scenario = write_scenario(tmp_path)
    out = tmp_path / "out"
    argv = ["backtest", "--scenario", str(scenario), "--strategy", "dqn", "--param", "timesteps=200",
            "--param", "seeds=0", "--out", str(out)]
    assert run.main(argv) == 0
    printed = capsys.readouterr().out
    assert "dqn seed 0: trained" in printed and "buy_and_hold" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["seeds"]) == {"0"} and (out / "equity.csv").is_file()
    assert run.main(argv) == 0
    assert "dqn seed 0: reused" in capsys.readouterr().out


def test_backtest_rl_rejects_bad_parameters_and_missing_scenario(tmp_path: Path, capsys) -> None:
    scenario = write_scenario(tmp_path)
    bad = ["backtest", "--scenario", str(scenario), "--strategy", "ppo", "--param", "timesteps=3", "--out", str(tmp_path / "o")]
    assert run.main(bad) == 2
    assert "timesteps" in capsys.readouterr().err
    csv = tmp_path / "p.csv"
    csv.write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,1,1,1,1,1\n", encoding="utf-8")
    assert run.main(["backtest", "--prices", str(csv), "--strategy", "ppo", "--out", str(tmp_path / "o")]) == 2
    assert "pass --scenario" in capsys.readouterr().err


def test_flag_trader_params_are_parsed_into_the_rl_config() -> None:
    from agents.rl.cli import rl_config_from_params

    rl = rl_config_from_params({"seeds": "0,1", "flag_trader.iterations": "4", "flag_trader.train_sessions": "30"})
    assert rl.seeds == (0, 1) and rl.flag_trader == {"iterations": 4, "train_sessions": 30}
