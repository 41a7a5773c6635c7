"""FLAG-Trader: the local LLM itself is the PPO policy (Xiong et al. 2025, "FLAG-Trader").

Each session's state is rendered as a short text prompt (``prompts/flag_trader.md``: the task,
the actions buy / sell / hold, recent returns, a trend summary, position, cash and today's
headlines, and the answer format). The action distribution is the softmax of the calibrated
option scores of the three words (``agents.rl.flag_policy``): zero-shot, it equals what the
local backend's ``choose`` returns for the same prompt. PPO (clipped surrogate, GAE, value loss,
entropy bonus) trains the top ``trainable_blocks`` blocks and a value head on rollouts over a
training window; the frozen layers' hidden states are computed once per state and reused by
every epoch, which is what makes it feasible on 2 CPU cores.

Dynamics are the backtest engine's (``env.engine.run_backtest``), on the project's ``Broker``:
decide at the close of session ``i``, fill at the next open, mark at the close. buy targets
weight 1 (all equity, long only; the broker enforces its limits), sell targets 0, hold sends no
order. Reward: ``reward_scale * log(equity[i+1] / equity[i])``. A training window
``[start, end)`` makes decisions at ``start .. end-2`` so that no reward reads a price at or after
``end`` (the first test session).

Public API (what ``eval_rl.py`` and ``run.py backtest --strategy flag_trader`` call):
``train_flag_trader`` -> ``FlagTrader``; ``FlagTrader.load(folder)``; ``evaluate(trader, data,
broker_config, start, end)`` -> ``BacktestResult``; ``FlagTrader.strategy()`` -> an engine strategy.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.llm.base import ChatMessage
from agents.llm.local import content_free
from agents.llm.local_model import LocalModel, load_local_model
from agents.prompts import PromptLibrary, RenderedPrompt
from agents.rl.flag_policy import FlagPolicy
from env.broker import Broker, Order, PortfolioSnapshot, TargetWeightOrder
from env.config import BrokerConfig
from env.engine import BacktestResult, run_backtest
from env.errors import ConfigError
from env.market import MarketData, MarketView

ACTIONS = ("buy", "sell", "hold")
PROMPT_NAME = "flag_trader"
WEIGHTS_FILE = "adapter.safetensors"
META_FILE = "flag_trader.json"
LOG_FILE = "train_log.jsonl"


class FlagTraderConfig(BaseModel):
    """FLAG-Trader's state rendering, network and PPO settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ticker: str | None = Field(None, description="The one ticker traded; None: the data must have exactly one.")
    trainable_blocks: int = Field(2, ge=1, le=29, description="Top decoder blocks copied and trained; the rest stay frozen.")
    value_hidden: int = Field(64, ge=1, description="Width of the value head's hidden layer.")
    returns_window: int = Field(3, ge=1, le=20, description="Daily returns listed in the prompt, in sessions.")
    trend_window: int = Field(20, ge=2, le=250, description="Look-back of the trend line (return and distance from the SMA), in sessions.")
    headlines: int = Field(1, ge=0, le=5, description="Most headlines of the day rendered (0: none); the newest first.")
    headline_chars: int = Field(90, ge=10, le=400, description="Characters kept of each headline.")
    n_envs: int = Field(2, ge=1, le=64, description="Parallel rollouts over the training window per PPO update.")
    iterations: int = Field(8, ge=1, description="PPO updates (each on fresh rollouts).")
    train_sessions: int | None = Field(
        None, ge=3, description="Train on the last this-many sessions of the training window (None: all of it); each PPO "
        "iteration costs one full-model pass per session and env, so this bounds the training time.",
    )
    epochs: int = Field(4, ge=1, description="Passes over each rollout batch.")
    minibatch_size: int = Field(16, ge=1, description="Transitions per gradient step.")
    gamma: float = Field(0.9, ge=0, le=1, description="Discount per session.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda.")
    clip_range: float = Field(0.2, gt=0, lt=1, description="PPO ratio clip epsilon.")
    value_coef: float = Field(0.5, ge=0, description="Weight of the value loss.")
    entropy_coef: float = Field(0.01, ge=0, description="Weight of the entropy bonus.")
    lr_blocks: float = Field(2e-5, gt=0, description="AdamW learning rate of the trainable blocks.")
    lr_value: float = Field(1e-3, gt=0, description="AdamW learning rate of the value head.")
    max_grad_norm: float = Field(0.5, gt=0, description="Gradient-norm clip over all trainable parameters.")
    reward_scale: float = Field(100.0, gt=0, description="Reward = this times the log equity change (100: log-percent).")
    min_trade_weight: float = Field(
        0.02, ge=0, lt=1, description="A buy or sell that would change the weight by less than this sends no order (no churn)."
    )
    batch_size: int = Field(8, ge=1, description="Prompts per forward pass of the frozen layers.")
    seed: int = Field(0, description="Seed of action sampling and minibatch order.")
    model_path: str | None = Field(None, description="GGUF file or HF folder of the LLM; None: the embedded SmolLM2-135M-Instruct.")
    threads: int = Field(2, ge=1, description="torch intra-op threads.")
    cache_dir: str | None = Field(None, description="Folder of the converted model (None: the project default).")


def parse_flag_config(values: dict[str, Any]) -> FlagTraderConfig:
    """Validate ``values`` as a ``FlagTraderConfig``; ``ConfigError`` naming each bad field."""
    try:
        return FlagTraderConfig.model_validate(values)
    except ValidationError as exc:
        problems = [f"flag_trader.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError("; ".join(problems)) from exc


# ---------------------------------------------------------------------- state rendering
def _pct(value: float) -> str:
    return f"{value * 100:+.1f}%"


def render_state(
    view: MarketView, portfolio: PortfolioSnapshot, ticker: str, config: FlagTraderConfig, library: PromptLibrary
) -> RenderedPrompt:
    """The prompt for the decision at the close of ``view.index`` (point-in-time: the view only)."""
    closes = view.series(ticker, "close", lookback=config.trend_window + 1)
    returns = closes[1:] / closes[:-1] - 1.0
    recent = " ".join(_pct(r) for r in returns[-config.returns_window:]) or "none yet"
    sma = float(np.mean(closes[-config.trend_window:]))
    trend = f"{len(closes) - 1}-day: {_pct(closes[-1] / closes[0] - 1.0)}, vs average {_pct(closes[-1] / sma - 1.0)}."
    weight = portfolio.weights.get(ticker, 0.0)
    equity = portfolio.equity
    news: list[str] = []
    if config.headlines:
        items = view.news(ticker, since=view.index - 1) if view.index > 0 else view.news(ticker)
        news = [item.headline[: config.headline_chars] for item in reversed(items[-config.headlines:])]
    return library.render(
        PROMPT_NAME,
        ticker=ticker,
        returns=recent,
        trend=trend,
        position=f"{weight:.0%}",
        cash=f"{portfolio.cash / equity:.0%}" if equity > 0 else "n/a",
        news="\n".join(news) if news else "none",
    )


def prompt_ids(tokenizer: Any, messages: Sequence[ChatMessage]) -> list[int]:
    """Token ids of ``messages`` in the chat template with the assistant turn opened (as ``choose`` scores them)."""
    rendered = tokenizer.apply_chat_template(
        [message.model_dump() for message in messages], add_generation_prompt=True, tokenize=False
    )
    return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])


def _single_token_ids(tokenizer: Any, options: Sequence[str]) -> list[int]:
    ids = []
    for option in options:
        tokens = tokenizer(option, add_special_tokens=False)["input_ids"]
        if len(tokens) != 1:
            raise ConfigError(f"FLAG-Trader needs one token per action; {option!r} encodes to {len(tokens)} tokens")
        ids.append(int(tokens[0]))
    return ids


# ---------------------------------------------------------------------- the trader
class FlagTrader:
    """A FLAG-Trader policy bound to its tokenizer, prompt and config."""

    def __init__(self, config: FlagTraderConfig, loaded: LocalModel | None = None, library: PromptLibrary | None = None) -> None:
        self.config = config
        self.loaded = loaded or load_local_model(
            config.model_path, config.threads, Path(config.cache_dir) if config.cache_dir else None
        )
        self.library = library or PromptLibrary()
        self.template_hash = self.library.templates[PROMPT_NAME].hash
        tokenizer = self.loaded.tokenizer
        self.policy = FlagPolicy(
            self.loaded.model, _single_token_ids(tokenizer, ACTIONS), config.trainable_blocks, config.value_hidden
        )
        self.policy.calibrate(self._content_free_ids())

    def _content_free_ids(self) -> list[int]:
        # The system message holds no state, so one content-free prompt calibrates every state.
        sample = RenderedPrompt(PROMPT_NAME, self.template_hash, self._system_text(), "")
        return prompt_ids(self.loaded.tokenizer, content_free(sample.chat()))

    def _system_text(self) -> str:
        template = self.library.templates[PROMPT_NAME]
        placeholder = {name: "x" for name in template.variables}
        return template.render(**placeholder).system

    def ticker_of(self, data: MarketData) -> str:
        """The ticker traded on ``data`` (``ConfigError`` if ambiguous or absent)."""
        if self.config.ticker is not None:
            if self.config.ticker not in data.tickers:
                raise ConfigError(f"flag_trader.ticker={self.config.ticker!r} is not in the data (tickers {list(data.tickers)})")
            return self.config.ticker
        if len(data.tickers) != 1:
            raise ConfigError(
                f"FLAG-Trader trades one ticker and the data has {len(data.tickers)}; set flag_trader.ticker to one of {list(data.tickers)}"
            )
        return data.tickers[0]

    def prompt(self, view: MarketView, portfolio: PortfolioSnapshot, ticker: str) -> list[int]:
        """Token ids of the state prompt at ``view``."""
        rendered = render_state(view, portfolio, ticker, self.config, self.library)
        return prompt_ids(self.loaded.tokenizer, rendered.chat())

    def encode(self, prompts: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """Frozen-layer hidden states of ``prompts`` (cached by rollouts, reused by every epoch)."""
        return self.policy.encode(prompts, self.config.batch_size)

    def action_probs(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """P(buy), P(sell), P(hold) for each prompt: softmax of the calibrated option scores ([B, 3])."""
        with torch.no_grad():
            option_logp, _ = self.policy.heads(self.encode(prompts))
            return torch.softmax(self.policy.action_logits(option_logp), dim=-1).double().numpy()

    def strategy(self, greedy: bool = True, seed: int = 0) -> FlagTraderStrategy:
        """An ``env.engine`` strategy that trades with this policy (greedy: the most likely action)."""
        return FlagTraderStrategy(self, greedy=greedy, seed=seed)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path) -> Path:
        """Write the trainable blocks, the value head and the calibration (not the frozen base) to ``folder``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.detach().contiguous() for name, tensor in self.policy.state_dict().items()
                 if not name.startswith("norm.")}
        save_file(state, str(folder / WEIGHTS_FILE))
        meta = {
            "config": self.config.model_dump(mode="json"),
            "model": self.loaded.name,
            "num_hidden_layers": self.loaded.num_hidden_layers,
            "actions": list(ACTIONS),
            "template_hash": self.template_hash,
        }
        (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: Path, loaded: LocalModel | None = None, library: PromptLibrary | None = None) -> FlagTrader:
        """Rebuild a trader saved by ``save`` on the (unchanged) base model."""
        from safetensors.torch import load_file

        folder = Path(folder)
        meta_path, weights_path = folder / META_FILE, folder / WEIGHTS_FILE
        if not meta_path.is_file() or not weights_path.is_file():
            raise ConfigError(f"{folder}: no saved FLAG-Trader ({META_FILE} and {WEIGHTS_FILE}); train one first")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        trader = cls(parse_flag_config(meta["config"]), loaded=loaded, library=library)
        if meta["num_hidden_layers"] != trader.loaded.num_hidden_layers or meta["model"] != trader.loaded.name:
            raise ConfigError(
                f"{folder}: trained on {meta['model']} ({meta['num_hidden_layers']} blocks), "
                f"but the model loaded is {trader.loaded.name} ({trader.loaded.num_hidden_layers} blocks)"
            )
        if meta["template_hash"] != trader.template_hash:
            raise ConfigError(
                f"{folder}: trained with prompts/{PROMPT_NAME}.md version {meta['template_hash']}, "
                f"the current file is {trader.template_hash}; retrain (the state text changed)"
            )
        state = load_file(str(weights_path))
        missing, unexpected = trader.policy.load_state_dict(state, strict=False)
        if unexpected or [name for name in missing if not name.startswith("norm.")]:
            raise ConfigError(f"{weights_path}: weights do not fit the policy (missing {missing}, unexpected {unexpected})")
        return trader


class FlagTraderStrategy:
    """Engine strategy: at each close, render the state, take the policy's action, target 1 / 0 / unchanged."""

    def __init__(self, trader: FlagTrader, greedy: bool = True, seed: int = 0) -> None:
        self.trader = trader
        self.greedy = greedy
        self._rng = np.random.default_rng(seed)
        self.decisions: list[tuple[str, str, list[float]]] = []

    def on_bar(self, view: MarketView, portfolio: PortfolioSnapshot) -> list[Order]:
        ticker = _view_ticker(self.trader, view)
        probs = self.trader.action_probs([self.trader.prompt(view, portfolio, ticker)])[0]
        k = int(np.argmax(probs)) if self.greedy else int(self._rng.choice(len(ACTIONS), p=probs / probs.sum()))
        self.decisions.append((view.date.isoformat(), ACTIONS[k], [float(p) for p in probs]))
        weight = portfolio.weights.get(ticker, 0.0)
        return _orders(ACTIONS[k], ticker, weight, self.trader.config.min_trade_weight)


def _view_ticker(trader: FlagTrader, view: MarketView) -> str:
    if trader.config.ticker is not None:
        return trader.config.ticker
    if len(view.tickers) != 1:
        raise ConfigError(f"FLAG-Trader trades one ticker and the data has {len(view.tickers)}; set flag_trader.ticker")
    return view.tickers[0]


def _orders(action: str, ticker: str, weight: float, min_trade_weight: float) -> list[Order]:
    """buy: target weight 1; sell: target 0 (any position is closed); hold, a sell when flat or a buy
    that would change the weight by less than ``min_trade_weight``: no order."""
    if action == "sell":
        return [TargetWeightOrder(ticker, 0.0)] if weight != 0.0 else []
    if action == "buy" and 1.0 - weight >= min_trade_weight:
        return [TargetWeightOrder(ticker, 1.0)]
    return []


def evaluate(trader: FlagTrader, data: MarketData, broker_config: BrokerConfig, start: int, end: int) -> BacktestResult:
    """Greedy FLAG-Trader through the backtest engine over sessions ``[start, end)``."""
    return run_backtest(data, trader.strategy(greedy=True), broker_config, start=start, end=end)


# ---------------------------------------------------------------------- PPO
@dataclass
class Rollout:
    """Transitions of ``n_envs`` parallel episodes, flattened env-major (each env's steps in order)."""

    hiddens: list[torch.Tensor]
    actions: torch.Tensor
    logp: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    episode_returns: list[float]


def gae(rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates over one env's consecutive steps.

    ``dones[t]`` is 1 when step ``t`` ends the episode (no bootstrap from ``values[t+1]``). Returns
    (advantages, value targets = advantages + values).
    """
    n = len(rewards)
    advantages = np.zeros(n)
    running = 0.0
    for t in range(n - 1, -1, -1):
        next_value = 0.0 if dones[t] or t == n - 1 else values[t + 1]
        keep = 0.0 if dones[t] else 1.0
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * keep * running
        advantages[t] = running
    return advantages, advantages + values


def collect_rollout(
    trader: FlagTrader, data: MarketData, broker_config: BrokerConfig, start: int, end: int, generator: torch.Generator
) -> Rollout:
    """Sample ``n_envs`` episodes of decisions at sessions ``start .. end-2`` (rewards end at ``end-1``)."""
    config = trader.config
    ticker = trader.ticker_of(data)
    if end - start < 2:
        raise ConfigError(f"the training window [{start}, {end}) needs at least 2 sessions")
    brokers = [Broker(data, broker_config) for _ in range(config.n_envs)]
    steps = end - 1 - start
    hiddens: list[list[torch.Tensor]] = [[] for _ in brokers]
    actions = np.zeros((config.n_envs, steps), dtype=np.int64)
    logps = np.zeros((config.n_envs, steps))
    values = np.zeros((config.n_envs, steps))
    rewards = np.zeros((config.n_envs, steps))
    for broker in brokers:
        broker.step(start)
    for s, i in enumerate(range(start, end - 1)):
        view = data.view(i)
        snaps = [broker.portfolio() for broker in brokers]
        states = trader.encode([trader.prompt(view, snap, ticker) for snap in snaps])
        with torch.no_grad():
            option_logp, value = trader.policy.heads(states)
            log_probs = torch.log_softmax(trader.policy.action_logits(option_logp), dim=-1)
            chosen = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(-1)
        for e, (broker, snap) in enumerate(zip(brokers, snaps)):
            k = int(chosen[e])
            hiddens[e].append(states[e])
            actions[e, s] = k
            logps[e, s] = float(log_probs[e, k])
            values[e, s] = float(value[e])
            orders = _orders(ACTIONS[k], ticker, snap.weights.get(ticker, 0.0), config.min_trade_weight)
            if orders:
                broker.submit(orders, i)
            broker.step(i + 1)
            after = broker.portfolio().equity
            rewards[e, s] = config.reward_scale * (math.log(after / snap.equity) if after > 0 else -50.0)
    dones = np.zeros(steps)
    dones[-1] = 1.0
    advantages, targets = [], []
    for e in range(config.n_envs):
        adv, ret = gae(rewards[e], values[e], dones, config.gamma, config.gae_lambda)
        advantages.append(adv)
        targets.append(ret)
    return Rollout(
        hiddens=[h for env_hiddens in hiddens for h in env_hiddens],
        actions=torch.from_numpy(actions.reshape(-1)),
        logp=torch.from_numpy(logps.reshape(-1)).float(),
        values=torch.from_numpy(values.reshape(-1)).float(),
        rewards=torch.from_numpy(rewards.reshape(-1)).float(),
        dones=torch.from_numpy(np.tile(dones, config.n_envs)).float(),
        advantages=torch.from_numpy(np.concatenate(advantages)).float(),
        returns=torch.from_numpy(np.concatenate(targets)).float(),
        episode_returns=[float(r.sum() / config.reward_scale) for r in rewards],
    )


def make_optimizer(trader: FlagTrader) -> torch.optim.Optimizer:
    """AdamW over the trainable blocks and the value head (no weight decay: stay near the base model)."""
    groups = trader.policy.trainable_parameters()
    return torch.optim.AdamW(
        [
            {"params": groups["blocks"], "lr": trader.config.lr_blocks},
            {"params": groups["value_head"], "lr": trader.config.lr_value},
        ],
        weight_decay=0.0,
    )


def ppo_update(trader: FlagTrader, optimizer: torch.optim.Optimizer, rollout: Rollout, rng: np.random.Generator) -> dict[str, float]:
    """``epochs`` passes of clipped-PPO minibatch steps over ``rollout``; returns mean losses and diagnostics."""
    config = trader.config
    policy = trader.policy
    n = len(rollout.hiddens)
    params = [p for group in policy.trainable_parameters().values() for p in group]
    sums = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clip_fraction": 0.0}
    count = 0
    for _ in range(config.epochs):
        order = rng.permutation(n)
        for begin in range(0, n, config.minibatch_size):
            idx = order[begin : begin + config.minibatch_size]
            option_logp, values = policy.heads([rollout.hiddens[i] for i in idx])
            log_probs = torch.log_softmax(policy.action_logits(option_logp), dim=-1)
            index = torch.from_numpy(idx)
            actions = rollout.actions[index]
            new_logp = log_probs.gather(1, actions[:, None]).squeeze(1)
            advantages = rollout.advantages[index]
            if len(idx) > 1:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            ratio = torch.exp(new_logp - rollout.logp[index])
            clipped = torch.clamp(ratio, 1.0 - config.clip_range, 1.0 + config.clip_range)
            policy_loss = -torch.min(ratio * advantages, clipped * advantages).mean()
            value_loss = 0.5 * ((values - rollout.returns[index]) ** 2).mean()
            entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
            loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                log_ratio = new_logp - rollout.logp[index]
                sums["approx_kl"] += float(((ratio - 1.0) - log_ratio).mean())
                sums["clip_fraction"] += float(((ratio - 1.0).abs() > config.clip_range).float().mean())
            sums["policy_loss"] += float(policy_loss.detach())
            sums["value_loss"] += float(value_loss.detach())
            sums["entropy"] += float(entropy.detach())
            count += 1
    return {key: value / count for key, value in sums.items()}


def train_flag_trader(
    data: MarketData,
    config: FlagTraderConfig,
    run_dir: Path,
    *,
    broker_config: BrokerConfig,
    start: int,
    end: int,
    loaded: LocalModel | None = None,
    log: Callable[[dict[str, Any]], None] | None = None,
) -> FlagTrader:
    """Train FLAG-Trader with PPO on the training window ``[start, end)`` of ``data`` (its last
    ``config.train_sessions`` sessions when that is set).

    Saves the adapted weights and a per-iteration log to ``run_dir / "flag_trader"`` and returns
    the trained ``FlagTrader``. ``log`` receives each iteration's statistics as they happen.
    """
    if config.train_sessions is not None:
        start = max(start, end - config.train_sessions)
    torch.manual_seed(config.seed)
    trader = FlagTrader(config, loaded=loaded)
    trader.ticker_of(data)
    folder = Path(run_dir) / "flag_trader"
    folder.mkdir(parents=True, exist_ok=True)
    optimizer = make_optimizer(trader)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    with (folder / LOG_FILE).open("w", encoding="utf-8") as handle:
        for iteration in range(config.iterations):
            began = time.perf_counter()
            rollout = collect_rollout(trader, data, broker_config, start, end, generator)
            rolled = time.perf_counter()
            stats = ppo_update(trader, optimizer, rollout, rng)
            row = {
                "iteration": iteration,
                "transitions": len(rollout.hiddens),
                "mean_episode_log_return": float(np.mean(rollout.episode_returns)),
                "buy_share": float((rollout.actions == 0).float().mean()),
                "sell_share": float((rollout.actions == 1).float().mean()),
                "rollout_s": rolled - began,
                "update_s": time.perf_counter() - rolled,
                **stats,
            }
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            if log is not None:
                log(row)
    trader.save(folder)
    return trader
