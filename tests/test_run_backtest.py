"""``run.py backtest`` in-process: outputs on disk, agreement with the engine, exit code 2 on bad flags."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import run
from env.baselines import make_strategy
from env.config import BrokerConfig
from env.engine import run_backtest
from env.market import MarketData
from env.sources import load_prices_csv

KEYS = [
    "cumulative_return", "annual_return", "sharpe", "sortino", "annual_volatility",
    "max_drawdown", "calmar", "win_rate", "turnover", "exposure",
]


@pytest.fixture
def prices_csv(tmp_path):
    rng = np.random.default_rng(11)
    n = 300
    close = 80 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n)))
    open_ = np.r_[80, close[:-1]] * np.exp(rng.normal(0, 0.004, n))
    frame = pd.DataFrame(
        {
            "Date": pd.bdate_range("2018-01-01", periods=n).strftime("%Y-%m-%d"),
            "Open": open_, "High": np.maximum(open_, close) * 1.003, "Low": np.minimum(open_, close) * 0.997,
            "Close": close, "Volume": 1e6,
        }
    )
    path = tmp_path / "acme.csv"
    frame.to_csv(path, index=False)
    return path


def test_backtest_from_prices_writes_outputs_matching_the_engine(prices_csv, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = run.main([
        "backtest", "--prices", str(prices_csv), "--ticker", "ACME", "--strategy", "sma_cross",
        "--param", "fast=10", "--param", "slow=30", "--fee-bps", "10", "--out", str(out),
    ])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == KEYS
    equity = pd.read_csv(out / "equity.csv")
    assert list(equity.columns) == ["date", "equity"] and len(equity) == 300
    fills = pd.read_csv(out / "fills.csv")
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    data = MarketData({"ACME": load_prices_csv(prices_csv, "ACME")})
    direct = run_backtest(data, make_strategy("sma_cross", fast=10, slow=30), BrokerConfig(commission_bps=10))
    assert equity["equity"].to_numpy() == pytest.approx(direct.equity.to_numpy(), rel=1e-12)
    assert len(fills) == len(direct.fills) > 0
    assert metrics["sharpe"] == pytest.approx(direct.metrics["sharpe"])
    table = capsys.readouterr().out
    assert "buy_and_hold" in table and "max_drawdown" in table


def test_backtest_from_scenario(prices_csv, tmp_path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"name: bt\nseed: 3\ncache_dir: {tmp_path / 'cache'}\n"
        f"data:\n  kind: csv\n  prices: {prices_csv}\n  ticker: ACME\n"
        "broker:\n  commission_bps: 5\n  initial_cash: 50000\n"
    )
    out = tmp_path / "scen"
    assert run.main(["backtest", "--scenario", str(scenario), "--strategy", "macd", "--out", str(out)]) == 0
    equity = pd.read_csv(out / "equity.csv")
    assert equity["equity"].iloc[0] == 50_000
    data = MarketData({"ACME": load_prices_csv(prices_csv, "ACME")})
    direct = run_backtest(data, make_strategy("macd"), BrokerConfig(commission_bps=5, initial_cash=50_000))
    assert equity["equity"].to_numpy() == pytest.approx(direct.equity.to_numpy(), rel=1e-12)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--strategy", "sma_cross", "--out", "X"], "--prices"),
        (["--prices", "missing.csv", "--strategy", "sma_cross", "--out", "X"], "--prices"),
        (["--prices", "{csv}", "--strategy", "nope", "--out", "X"], "--strategy"),
        (["--prices", "{csv}", "--strategy", "sma_cross", "--param", "fast", "--out", "X"], "--param"),
        (["--prices", "{csv}", "--strategy", "sma_cross", "--param", "fast=50", "--out", "X"], "--param"),
        (["--prices", "{csv}", "--strategy", "sma_cross", "--fee-bps", "abc", "--out", "X"], "--fee-bps"),
        (["--prices", "{csv}", "--strategy", "sma_cross", "--fee-bps", "-1", "--out", "X"], "--fee-bps"),
        (["--prices", "{csv}", "--strategy", "sma_cross"], "--out"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(argv, flag, prices_csv, tmp_path, capsys) -> None:
    argv = [a.replace("{csv}", str(prices_csv)).replace("X", str(tmp_path / "o")) for a in argv]
    assert run.main(["backtest", *argv]) == 2
    assert flag in capsys.readouterr().err


def test_bad_csv_row_exit_2_naming_flag_and_line(prices_csv, tmp_path, capsys) -> None:
    lines = prices_csv.read_text().splitlines()
    lines[5] = lines[5].split(",")[0] + ",oops,1,1,1,1"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    assert run.main(["backtest", "--prices", str(bad), "--strategy", "rsi", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--prices" in err and "line 6" in err
