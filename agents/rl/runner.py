"""Train RL strategies on a scenario's training sessions and evaluate them on its test period.

``run_rl(scenario, strategy, rl)`` is what ``run.py backtest --scenario S --strategy ppo`` calls:

- the schedule is the agent's (``agents.runtime.schedule_for``): decisions from ``test_start``,
  equity marked to ``end_day``; training uses the sessions before ``test_start``;
- each seed trains one model (or loads ``models/seed<k>.zip`` when the run folder has it, so a
  rerun or a replay trains nothing), then a deterministic pass over the test period gives its
  equity curve through the same broker;
- strategies that read LLM scores score the news once through the scenario's LLM config and the
  run folder's cache (``llm_cache.sqlite``), so a rerun replays them with 0 model calls.

Strategies live in ``STRATEGIES``: a name, what the env needs (action mode, scores, modulation)
and a trainer. A new method registers a ``StrategySpec`` whose ``trainer`` returns a policy.

Run folder ``runs/<scenario>-<strategy>-<hash>/``: ``config.json``, ``models/``,
``metrics.json`` (per seed and the mean), ``equity.csv`` (one column per seed), ``fills.csv``
(with a ``seed`` column), ``baselines.json`` (buy-and-hold on the same window) and, with LLM
scores, ``scores.csv`` and ``llm_cache.sqlite``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from agents.rl.config import RLConfig
from agents.rl.env import TradingRLEnv
from agents.rl.modulation import ScoreTable
from env.config import BrokerConfig
from env.errors import ConfigError
from env.market import MarketData
from env.metrics import compute_metrics
from rewards.momentum import historical_cvar

WARM_SESSIONS = 34  # MACD(12, 26, 9) needs 26 + 9 - 1 sessions before its first value
CVAR_ALPHA = 0.05


class Policy(Protocol):
    """Anything that maps an observation to an action (a stable-baselines3 model qualifies)."""

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> tuple[Any, Any]: ...


@dataclass(frozen=True)
class TrainJob:
    """Everything a trainer needs for one seed. Training may read sessions train_start..train_end only."""

    make_env: Callable[[int, int], TradingRLEnv]  # (start, end) -> a fresh environment
    train_start: int
    train_end: int
    seed: int
    rl: RLConfig
    model_path: Path  # where the trainer saves (and looks for) the model, without suffix
    data: MarketData | None = None
    broker: BrokerConfig | None = None


# A trainer returns (policy, reused from disk). The policy is either a ``Policy`` (evaluated on a
# ``TradingRLEnv`` over the test period) or an engine ``Strategy`` with ``on_bar`` (evaluated by
# ``env.engine.run_backtest`` over the same sessions): both step the broker test_start..end.
Trainer = Callable[[TrainJob], tuple[Any, bool]]


@dataclass(frozen=True)
class StrategySpec:
    """One RL method: how its environment is built and how it is trained."""

    name: str
    trainer: Trainer
    action_mode: Literal["weight", "discrete"] = "weight"
    scores: Literal["none", "recommendation", "both"] = "none"  # which LLM scores the state carries
    modulate: bool = False  # FinRL-DeepSeek action modulation by the recommendation
    description: str = ""


@dataclass
class RLRun:
    """What ``run_rl`` produced."""

    run_id: str
    run_dir: Path
    strategy: str
    equity: dict[int, pd.Series]
    metrics: dict[int, dict[str, float]]
    reused: dict[int, bool]
    train_seconds: dict[int, float]
    baseline: dict[str, float]
    llm_stats: dict[str, int] = field(default_factory=dict)

    def mean_metrics(self) -> dict[str, float]:
        keys = next(iter(self.metrics.values())).keys()
        return {k: float(np.mean([m[k] for m in self.metrics.values()])) for k in keys}


# -- trainers ------------------------------------------------------------------------------
def _sb3_trainer(algorithm: str) -> Trainer:
    def train(job: TrainJob) -> tuple[Policy, bool]:
        import torch
        from stable_baselines3 import A2C, DQN, PPO

        from agents.rl.cppo import CPPO

        classes = {"ppo": PPO, "a2c": A2C, "dqn": DQN, "cppo": CPPO}
        cls = classes[algorithm]
        env = job.make_env(job.train_start, job.train_end)
        path = job.model_path.with_suffix(".zip")
        if path.is_file():
            return cls.load(path, env=env, device="cpu"), True
        torch.set_num_threads(job.rl.threads)
        rl = job.rl
        kwargs: dict[str, Any] = {"learning_rate": rl.learning_rate, "gamma": rl.gamma, "seed": job.seed, "device": "cpu", "verbose": 0}
        if algorithm in ("ppo", "cppo"):
            kwargs.update(n_steps=rl.n_steps, batch_size=min(64, rl.n_steps))
        if algorithm == "a2c":
            kwargs.update(n_steps=max(5, rl.n_steps // 64))
        if algorithm == "dqn":
            kwargs.update(learning_starts=min(1000, rl.timesteps // 10), buffer_size=min(100_000, rl.timesteps),
                          exploration_fraction=0.3, target_update_interval=max(100, rl.timesteps // 100), train_freq=4)
        if algorithm == "cppo":
            kwargs.update(rl.cppo.model_dump())
        model = cls("MlpPolicy", env, **kwargs)
        model.learn(total_timesteps=rl.timesteps)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        return model, False

    return train


def _flag_trainer(job: TrainJob) -> tuple[Any, bool]:
    """FLAG-Trader (agents/rl/flag_trader.py): SmolLM2 as the PPO policy, trained on the same
    sessions; saved under the seed's model folder and reloaded by a rerun. Its own env is the
    backtest engine, so the runner evaluates the returned engine strategy with ``run_backtest``."""
    from agents.rl.flag_trader import META_FILE, FlagTrader, train_flag_trader

    folder = job.model_path / "flag_trader"
    if (folder / META_FILE).is_file():
        return FlagTrader.load(folder).strategy(), True
    assert job.data is not None and job.broker is not None
    config = _flag_config(job)
    trader = train_flag_trader(job.data, config, job.model_path, broker_config=job.broker,
                               start=job.train_start, end=job.train_end + 1)
    return trader.strategy(), False


def _flag_config(job: TrainJob) -> Any:
    from agents.rl.flag_trader import parse_flag_config

    fixed = {"seed": job.seed, "threads": job.rl.threads, "min_trade_weight": job.rl.min_trade_weight}
    clash = sorted(set(job.rl.flag_trader) & set(fixed))
    if clash:
        raise ConfigError(f"rl.flag_trader: {clash} come from the RL config itself (seeds, threads, min_trade_weight)")
    return parse_flag_config({**job.rl.flag_trader, **fixed})


def _flag_zero_shot(job: TrainJob) -> tuple[Any, bool]:
    """FLAG-Trader before any PPO update: the base LLM's calibrated buy / sell / hold scores over the
    same text state are the policy (greedy). Nothing is trained or saved; the seed changes nothing."""
    from agents.rl.flag_trader import FlagTrader

    return FlagTrader(_flag_config(job)).strategy(), True


STRATEGIES: dict[str, StrategySpec] = {
    "ppo": StrategySpec("ppo", _sb3_trainer("ppo"), description="PPO (stable-baselines3), target weights."),
    "a2c": StrategySpec("a2c", _sb3_trainer("a2c"), description="A2C (stable-baselines3), target weights."),
    "dqn": StrategySpec("dqn", _sb3_trainer("dqn"), action_mode="discrete", description="DQN (stable-baselines3), buy / hold / sell."),
    "cppo": StrategySpec("cppo", _sb3_trainer("cppo"), description="CVaR-constrained PPO (FinRL-DeepSeek), no LLM."),
    "ppo_deepseek": StrategySpec(
        "ppo_deepseek", _sb3_trainer("ppo"), scores="recommendation", modulate=True,
        description="PPO with the LLM recommendation in the state and action modulation.",
    ),
    "cppo_deepseek": StrategySpec(
        "cppo_deepseek", _sb3_trainer("cppo"), scores="both", modulate=True,
        description="CPPO with LLM recommendation and risk: state, action modulation and risk-scaled CVaR term.",
    ),
    "flag_trader": StrategySpec(
        "flag_trader", _flag_trainer, action_mode="discrete",
        description="FLAG-Trader: SmolLM2 as the PPO policy over a text state (rl.flag_trader settings; RLConfig gives seed and threads).",
    ),
    "flag_trader_zero_shot": StrategySpec(
        "flag_trader_zero_shot", _flag_zero_shot, action_mode="discrete",
        description="FLAG-Trader's policy before training: the base LLM's calibrated buy / sell / hold choice on the same prompt.",
    ),
}
RL_STRATEGY_NAMES = tuple(STRATEGIES)


# -- evaluation ----------------------------------------------------------------------------
def evaluate(policy: Policy, env: TradingRLEnv) -> tuple[pd.Series, pd.DataFrame]:
    """One deterministic episode: the equity curve (by date) and the fills."""
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        action, _ = policy.predict(obs, deterministic=True)
        obs, _, done, _, _ = env.step(action)
    ledger = env.broker.ledger
    return ledger.equity["equity"].rename("equity"), ledger.fills


def equity_metrics(equity: pd.Series) -> dict[str, float]:
    """``env.metrics.compute_metrics`` plus ``cvar_5``: the historical CVaR (5 %) of daily returns, as a loss."""
    out = dict(compute_metrics(equity))
    returns = equity.pct_change().dropna().to_numpy()
    out["cvar_5"] = historical_cvar(returns, CVAR_ALPHA)
    return out


def windows(scenario: Any, data: MarketData, rl: RLConfig) -> tuple[int, int, int, int]:
    """(train_start, train_end, test_start, end) in session indices, from the agent's schedule."""
    from agents.runtime import schedule_for

    sched = schedule_for(scenario, data)
    train_start = min(WARM_SESSIONS, sched.test_start - 2) if rl.train_on_warmup else sched.first_day
    train_end = sched.test_start - 1
    if train_end - train_start < 2:
        raise ConfigError(
            f"RL training needs at least 2 sessions before the test start {sched.test_start}; "
            "lengthen episode.train_days or set train_on_warmup"
        )
    return train_start, train_end, sched.test_start, sched.end_day


def run_id_for(scenario: Any, strategy: str, rl: RLConfig) -> str:
    """Scenario, strategy and the RL settings that change a model. Seeds and threads are left out:
    each seed's model is its own file, so a run with more seeds reuses the ones already trained."""
    settings = rl.model_dump(mode="json", exclude={"seeds", "threads"})
    if not settings["flag_trader"]:
        del settings["flag_trader"]  # unset: the ids of runs made before the field existed stay valid (their models are reused)
    canonical = json.dumps({"scenario": scenario.config_hash(), "strategy": strategy, "rl": settings}, sort_keys=True)
    return f"{scenario.name}-{strategy}-{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


def score_table_for(spec: StrategySpec, scenario: Any, data: MarketData, run_dir: Path, last: int,
                    cache_path: Path | None = None) -> tuple[ScoreTable | None, dict[str, int]]:
    """The LLM scores ``spec`` needs (None for none), through the scenario's LLM config and cache."""
    if spec.scores == "none":
        return None, {}
    from agents.llm.factory import LLMPool, make_llm, open_cache
    from agents.llm.cache import LLMCache
    from agents.rl.deepseek import RECOMMENDATION_AGENT, RISK_AGENT, score_news

    llm_cfg = scenario.llm
    # An explicit cache file (eval_rl shares one across strategies) records and replays; otherwise the scenario's cache.
    cache = LLMCache(cache_path, "auto") if cache_path is not None else open_cache(llm_cfg, run_dir)
    with LLMPool(llm_cfg) as pool:
        rec_llm = make_llm(llm_cfg, RECOMMENDATION_AGENT, cache=cache, pool=pool)
        risk_llm = make_llm(llm_cfg, RISK_AGENT, cache=cache, pool=pool)
        table, stats = score_news(data, rec_llm, risk_llm, last=last)
    if cache is not None:
        cache.close()
    if spec.scores == "recommendation":
        table = ScoreTable(table.tickers, table.recommendation, np.full_like(table.risk, 3))
    return table, {"prompts": stats.prompts, "model_calls": stats.model_calls, "cache_hits": stats.cache_hits,
                   "fallbacks": stats.fallbacks, "sessions_with_news": stats.sessions_with_news}


def run_rl(
    scenario: Any,
    strategy: str,
    rl: RLConfig,
    *,
    data: MarketData | None = None,
    runs_dir: Path | None = None,
    llm_cache_path: Path | None = None,
    scores: ScoreTable | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> RLRun:
    """Train (or reload) ``strategy`` for every seed of ``rl`` and evaluate it on the scenario's test period.

    ``scores`` skips the LLM scoring (eval_rl passes one table to several strategies); otherwise
    strategies that need scores get them through the scenario's LLM config and cache.
    """
    from agents.runtime import load_data

    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown RL strategy {strategy!r}; choose one of {list(RL_STRATEGY_NAMES)}")
    spec = STRATEGIES[strategy]
    data = data if data is not None else load_data(scenario)
    train_start, train_end, test_start, end = windows(scenario, data, rl)
    run_id = run_id_for(scenario, strategy, rl)
    run_dir = Path(runs_dir if runs_dir is not None else scenario.runs_dir) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(
        {"strategy": strategy, "scenario": scenario.model_dump(mode="json"), "rl": rl.model_dump(mode="json"),
         "windows": {"train_start": train_start, "train_end": train_end, "test_start": test_start, "end": end}},
        indent=2, default=str), encoding="utf-8")
    llm_stats: dict[str, int] = {}
    if spec.scores != "none" and scores is None:
        scores, llm_stats = score_table_for(spec, scenario, data, run_dir, end, llm_cache_path)
        log(f"{strategy}: LLM scores {llm_stats}")
        _write_scores(scores, data, run_dir / "scores.csv")
    elif spec.scores == "recommendation" and scores is not None:
        scores = ScoreTable(scores.tickers, scores.recommendation, np.full_like(scores.risk, 3))
    elif spec.scores == "none":
        scores = None
    broker: BrokerConfig = scenario.broker

    def make_env(start: int, stop: int) -> TradingRLEnv:
        return TradingRLEnv(data, broker, start=start, end=stop, window=rl.window, action_mode=spec.action_mode,
                            reward=rl.reward, scores=scores, modulate=spec.modulate, reward_scale=rl.reward_scale,
                            min_trade_weight=rl.min_trade_weight)

    curves: dict[int, pd.Series] = {}
    metrics: dict[int, dict[str, float]] = {}
    reused: dict[int, bool] = {}
    seconds: dict[int, float] = {}
    fills = []
    saved_curves, saved_fills = _saved_tests(run_dir)
    for seed in rl.seeds:
        t0 = time.perf_counter()
        job = TrainJob(make_env, train_start, train_end, seed, rl, run_dir / "models" / f"seed{seed}", data, broker)
        policy, reused[seed] = spec.trainer(job)
        seconds[seed] = time.perf_counter() - t0
        if reused[seed] and seed in saved_curves:
            # The same saved model on the same test sessions: its deterministic test pass is the saved one
            # (FLAG-Trader's costs a model pass per session).
            curves[seed], seed_fills = saved_curves[seed], saved_fills.get(seed, saved_fills.get(None))
        elif hasattr(policy, "on_bar"):
            from env.engine import run_backtest

            result = run_backtest(data, policy, broker, start=test_start, end=end + 1)
            curves[seed], seed_fills = result.equity, result.fills
        else:
            curves[seed], seed_fills = evaluate(policy, make_env(test_start, end))
        metrics[seed] = equity_metrics(curves[seed])
        fills.append(seed_fills.assign(seed=seed))
        log(f"{strategy} seed {seed}: {'reused' if reused[seed] else 'trained'} in {seconds[seed]:.1f} s, "
            f"test sharpe {metrics[seed]['sharpe']:.3f}")
    baseline = _buy_and_hold(data, broker, test_start, end)
    _write_outputs(run_dir, curves, metrics, pd.concat(fills, ignore_index=True), baseline)
    return RLRun(run_id, run_dir, strategy, curves, metrics, reused, seconds, baseline, llm_stats)


def _saved_tests(run_dir: Path) -> tuple[dict[int, pd.Series], dict[int | None, pd.DataFrame]]:
    """The test curves and fills an earlier pass wrote to ``run_dir`` (``_write_outputs``), by seed."""
    equity_csv, fills_csv = run_dir / "equity.csv", run_dir / "fills.csv"
    if not (equity_csv.is_file() and fills_csv.is_file() and (run_dir / "metrics.json").is_file()):
        return {}, {}
    table = pd.read_csv(equity_csv, index_col="date", parse_dates=True)
    curves = {int(c.removeprefix("seed_")): table[c].dropna().rename("equity") for c in table.columns if c.startswith("seed_")}
    try:
        fills = pd.read_csv(fills_csv)
    except pd.errors.EmptyDataError:
        fills = pd.DataFrame()
    by_seed: dict[int | None, pd.DataFrame] = {None: fills.iloc[0:0]}
    if "seed" in fills.columns:
        by_seed.update({int(seed): group.drop(columns="seed") for seed, group in fills.groupby("seed")})
    return curves, by_seed


def _buy_and_hold(data: MarketData, broker: BrokerConfig, test_start: int, end: int) -> dict[str, float]:
    from env.baselines import make_strategy
    from env.engine import run_backtest

    result = run_backtest(data, make_strategy("buy_and_hold"), broker, start=test_start, end=end + 1)
    return equity_metrics(result.equity)


def _json_safe(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}


def _write_outputs(run_dir: Path, curves: dict[int, pd.Series], metrics: dict[int, dict[str, float]],
                   fills: pd.DataFrame, baseline: dict[str, float]) -> None:
    keys = next(iter(metrics.values())).keys()
    mean = {k: float(np.mean([m[k] for m in metrics.values()])) for k in keys}
    payload = {"seeds": {str(s): _json_safe(m) for s, m in metrics.items()}, "mean": _json_safe(mean)}
    (run_dir / "metrics.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    (run_dir / "baselines.json").write_text(json.dumps({"buy_and_hold": _json_safe(baseline)}, indent=2) + "\n", encoding="utf-8")
    table = pd.DataFrame({f"seed_{s}": c for s, c in curves.items()})
    table.index = table.index.strftime("%Y-%m-%d")
    table.index.name = "date"
    table.to_csv(run_dir / "equity.csv")
    fills.to_csv(run_dir / "fills.csv", index=False)


def _write_scores(scores: ScoreTable, data: MarketData, path: Path) -> None:
    frame = pd.DataFrame(
        {f"{kind}_{t}": getattr(scores, kind)[:, k] for k, t in enumerate(scores.tickers) for kind in ("recommendation", "risk")},
        index=pd.Index([d.isoformat() for d in data.dates], name="date"),
    )
    frame.to_csv(path)
