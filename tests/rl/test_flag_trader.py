"""FLAG-Trader on the real SmolLM2: PPO touches only the trainable blocks and heads, the action
probabilities are the calibrated option scores of ``choose``, and saved weights reload exactly."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import torch

from agents.llm.config import LocalBackendConfig
from agents.llm.local import LocalBackend
from agents.llm.local_model import load_local_model
from agents.rl.flag_trader import (
    ACTIONS,
    FlagTrader,
    FlagTraderConfig,
    collect_rollout,
    evaluate,
    gae,
    make_optimizer,
    parse_flag_config,
    ppo_update,
    render_state,
)
from env.broker import Broker
from env.config import BrokerConfig
from env.errors import ConfigError
from env.market import MarketData
from env.records import NewsItem

START, END = 24, 28  # training window: decisions at sessions 24..26, rewards up to 27


def market(tickers: tuple[str, ...] = ("ACME",)) -> MarketData:
    rng = np.random.default_rng(3)
    close = 50 * np.exp(np.cumsum(rng.normal(0.001, 0.02, 40)))
    open_ = np.r_[close[0], close[:-1]]
    index = pd.bdate_range("2023-01-02", periods=40)
    frame = pd.DataFrame(
        {"open": open_, "high": np.maximum(open_, close), "low": np.minimum(open_, close), "close": close, "volume": 1e6},
        index=index,
    )
    news = [
        NewsItem(id=f"n{i}", ticker=tickers[0], headline=text,
                 published_at=dt.datetime.combine(index[i].date(), dt.time(14), tzinfo=dt.timezone.utc))
        for i, text in ((25, "Acme beats quarterly estimates"), (26, "Acme cuts full-year guidance"))
    ]
    return MarketData({t: frame for t in tickers}, news=news)


@pytest.fixture(scope="module")
def loaded():
    return load_local_model()


@pytest.fixture(scope="module")
def config() -> FlagTraderConfig:
    return FlagTraderConfig(trainable_blocks=1, n_envs=2, epochs=1, minibatch_size=6, lr_blocks=1e-4, seed=1)


@pytest.fixture(scope="module")
def zero_shot(loaded, config) -> FlagTrader:
    """An untrained trader (its trainable blocks equal the base model's)."""
    return FlagTrader(config, loaded=loaded)


@pytest.fixture(scope="module")
def trained(loaded, config):
    """A trader after one PPO update, with snapshots of every parameter from before it."""
    trader = FlagTrader(config, loaded=loaded)
    base_before = {name: p.detach().clone() for name, p in loaded.model.named_parameters()}
    policy_before = {name: t.detach().clone() for name, t in trader.policy.state_dict().items()}
    rollout = collect_rollout(trader, market(), BrokerConfig(), START, END, torch.Generator().manual_seed(1))
    stats = ppo_update(trader, make_optimizer(trader), rollout, np.random.default_rng(1))
    return trader, base_before, policy_before, rollout, stats


def test_one_ppo_step_changes_only_the_trainable_blocks_and_heads(trained, loaded):
    trader, base_before, policy_before, rollout, stats = trained
    assert len(rollout.hiddens) == 2 * (END - 1 - START)
    assert np.isfinite(list(stats.values())).all()
    for name, param in loaded.model.named_parameters():
        assert torch.equal(param, base_before[name]), f"frozen base parameter {name} changed"
        assert param.grad is None, f"a gradient reached the frozen base parameter {name}"
    after = trader.policy.state_dict()
    changed = {name for name, tensor in after.items() if not torch.equal(tensor, policy_before[name])}
    trainable = {name for name, p in trader.policy.named_parameters() if p.requires_grad}
    assert changed, "the PPO step changed nothing"
    assert changed <= trainable
    assert any(name.startswith("blocks.") for name in changed)
    assert any(name.startswith("value_head.") for name in changed)
    assert all(name.startswith(("blocks.", "value_head.")) for name in trainable)
    # The frozen final-norm copy and the calibration offsets are untouched.
    assert not any(name.startswith("norm.") or name == "calibration" for name in changed)


def test_zero_shot_probabilities_are_the_calibrated_choose_scores(loaded, config, zero_shot):
    trader = zero_shot
    data = market()
    broker = Broker(data, BrokerConfig())
    broker.step(25)
    rendered = render_state(data.view(25), broker.portfolio(), "ACME", config, trader.library)
    assert "Acme beats quarterly estimates" in rendered.user and "UNTRUSTED DATA" in rendered.user
    probs = trader.action_probs([trader.prompt(data.view(25), broker.portfolio(), "ACME")])[0]
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)
    backend = LocalBackend(LocalBackendConfig(calibrate=True, runtime="torch"), loader=lambda *args: loaded)
    choice = backend.choose(rendered.chat(), ACTIONS, agent="test", fallback="hold")
    assert choice.calibrated
    np.testing.assert_allclose(probs, [choice.probs[a] for a in ACTIONS], atol=1e-4)
    # Calibration moved them: the raw option scores give a different distribution.
    raw = np.array([choice.scores[a] for a in ACTIONS])
    assert not np.allclose(np.exp(raw) / np.exp(raw).sum(), probs, atol=1e-3)


def test_save_and_load_give_identical_action_probabilities(trained, loaded, zero_shot, tmp_path):
    trader = trained[0]
    data = market()
    broker = Broker(data, BrokerConfig())
    broker.step(26)
    prompt = trader.prompt(data.view(26), broker.portfolio(), "ACME")
    trader.save(tmp_path)
    reloaded = FlagTrader.load(tmp_path, loaded=loaded)
    assert np.array_equal(reloaded.action_probs([prompt]), trader.action_probs([prompt]))
    assert not np.array_equal(zero_shot.action_probs([prompt]), trader.action_probs([prompt]))
    result = evaluate(reloaded, data, BrokerConfig(), 30, 34)
    assert len(result.equity) == 4 and (result.equity > 0).all()


def test_gae_matches_hand_computed_values():
    # gamma 0.5, lambda 0.5, values 1, 1, 1, episode ends at the last step:
    # deltas: 1 + .5*1 - 1 = .5, 0 + .5 - 1 = -.5, 2 + 0 - 1 = 1
    # A2 = 1; A1 = -.5 + .25*1 = -.25; A0 = .5 + .25*(-.25) = .4375
    advantages, targets = gae(np.array([1.0, 0.0, 2.0]), np.ones(3), np.array([0.0, 0.0, 1.0]), 0.5, 0.5)
    np.testing.assert_allclose(advantages, [0.4375, -0.25, 1.0])
    np.testing.assert_allclose(targets, [1.4375, 0.75, 2.0])
    # An episode boundary in the middle stops the bootstrap: A0 = 1 - 1 = 0.
    advantages, _ = gae(np.array([1.0, 3.0]), np.ones(2), np.array([1.0, 1.0]), 0.5, 0.5)
    np.testing.assert_allclose(advantages, [0.0, 2.0])


def test_bad_configuration_fails_early(zero_shot):
    with pytest.raises(ConfigError, match="flag_trader.trainable_blocks"):
        parse_flag_config({"trainable_blocks": 30})
    with pytest.raises(ConfigError, match="flag_trader.unknown"):
        parse_flag_config({"unknown": 1})
    with pytest.raises(ConfigError, match="set flag_trader.ticker"):
        zero_shot.ticker_of(market(("A", "B")))


def test_train_sessions_trains_on_the_last_sessions_of_the_window_only(loaded, tmp_path):
    from agents.rl.flag_trader import LOG_FILE, train_flag_trader

    config = FlagTraderConfig(trainable_blocks=1, n_envs=1, epochs=1, minibatch_size=4, iterations=1, train_sessions=3, seed=2)
    train_flag_trader(market(), config, tmp_path, broker_config=BrokerConfig(), start=2, end=END, loaded=loaded)
    (row,) = [json.loads(line) for line in (tmp_path / "flag_trader" / LOG_FILE).read_text().splitlines()]
    # [END-3, END): decisions at END-3 and END-2, one env; the full window [2, END) would give 24
    assert row["transitions"] == 2


def test_the_zero_shot_runner_strategy_is_the_untrained_policy(loaded, config):
    from agents.rl.config import RLConfig
    from agents.rl.runner import STRATEGIES, TrainJob

    rl = RLConfig(seeds=(1,), threads=loaded.threads, flag_trader={"trainable_blocks": 1})
    strategy, reused = STRATEGIES["flag_trader_zero_shot"].trainer(
        TrainJob(None, START, END, 1, rl, None, market(), BrokerConfig()))
    untrained = FlagTrader(config, loaded=loaded)
    data = market()
    broker = Broker(data, BrokerConfig())
    broker.step(25)
    prompts = [untrained.prompt(data.view(i), broker.portfolio(), "ACME") for i in (25, 26)]
    assert reused and np.allclose(strategy.trader.action_probs(prompts), untrained.action_probs(prompts))
    with pytest.raises(ConfigError, match="come from the RL config"):
        STRATEGIES["flag_trader_zero_shot"].trainer(
            TrainJob(None, START, END, 1, rl.model_copy(update={"flag_trader": {"seed": 3}}), None, market(), BrokerConfig()))
