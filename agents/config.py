"""The composed scenario config: one validated schema, loaded once in ``run.py`` and passed down.

Each package owns its part (``env.config``, ``memory.config``, ``agents.llm.config``,
``agents.learning.config``, ``rewards.config``); this module adds the agents' own settings and
composes them into ``ScenarioConfig``. A bad YAML file gets an error naming the field, the bad
value and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.anonymize import AnonymizeConfig
from agents.learning.config import LearningConfig
from agents.llm.config import LLMConfig
from agents.state import AgentName
from env.config import BrokerConfig, DataConfig, SyntheticConfig
from env.errors import ConfigError
from memory.config import MemoryConfig
from rewards.config import RewardConfig


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnalystsConfig(_Config):
    """Which analysts run and how they filter what they read."""

    news: bool = Field(True, description="Run the news analyst.")
    filings: bool = Field(True, description="Run the SEC filings analyst (10-K, 10-Q, 8-K).")
    macro: bool = Field(True, description="Run the macro analyst.")
    market: bool = Field(True, description="Run the market/technical analyst.")
    relevance_threshold: float = Field(
        0.5, ge=0, le=1, description="An item is stored in memory when P(relevant) is at least this."
    )
    max_items_per_day: int = Field(
        12, ge=1, le=200, description="Most items one analyst judges per ticker and session (newest first); the rest are traced as skipped."
    )
    max_item_chars: int = Field(220, ge=80, le=20_000, description="Characters of each item shown to the model.")
    technical_lookback_days: int = Field(60, ge=20, description="Sessions of prices the market analyst summarises.")


class DirectionConfig(_Config):
    """The direction agent: buy / sell / hold from memories, technicals, position and lessons."""

    memories_per_layer: int = Field(3, ge=1, le=20, description="Memories retrieved per layer for each decision.")
    llm_weight: float = Field(
        1.0, ge=0, le=5, description="Weight of the LLM's calibrated option log-probabilities in the decision. 0: the direction "
        "LLM is not asked at all (its answer could not move the decision), which saves the longest prompt of a session."
    )
    adapter_weight: float = Field(
        1.0, ge=0, le=5, description="Weight of the reward-adapted signal head (see learning) in the decision."
    )
    technical_weight: float = Field(
        0.5, ge=0, le=5, description="Weight of the market analyst's trend call in the decision. 0 together with llm_weight "
        "0: the trend call is not made at all (no decision could read it); the indicators are still computed and traced.",
    )
    calibration_min_n: int = Field(
        5, ge=1, description="Past answers needed before the LLM's and the trend call's deviations from their own running "
        "mean count as evidence (batch calibration removes a model's standing bias, e.g. always favouring buy).",
    )
    hold_prior: float = Field(
        0.3, gt=0, lt=1, description="Probability mass the signal side gives to hold before evidence."
    )
    news_half_life_days: float = Field(
        2.0, gt=0, description="Half-life (calendar days) of a news item's weight in the direction signal."
    )
    news_window_days: float = Field(
        5.0, gt=0, le=365, description="Calendar days of a ticker's news in memory that the news signal reads (today's included)."
    )
    size_on: Literal["news", "combined"] = Field(
        "news",
        description="The probability the risk agent sizes on. news: the news signal alone, a calibrated probability (exactly "
        "0.5 while neither reward-trained head shows skill), so an unproven reading never moves the size; the LLM's "
        "buy/sell/hold and the trend call still choose the action, which gates the direction of change. combined: "
        "buy / (buy + sell) of the product of experts (uncalibrated; the first release's chain).",
    )
    analyst_evidence_logit: float = Field(
        0.3, ge=0, le=5, description="Log-odds one fully relevant item moves P(up) per unit of the analyst's impact score "
        "(P(pos) - P(neg)) while no reward-trained head exists. Small by default: the tiny local model's zero-shot calls are noise.",
    )
    memories_in_prompt: int = Field(4, ge=0, le=50, description="Most memories shown in the direction prompt (best scores first).")
    memory_chars_in_prompt: int = Field(120, ge=40, le=4000, description="Characters of each memory or lesson shown in the direction prompt.")


class RiskConfig(_Config):
    """Sizing: scaled Kelly under a CVaR budget, then hard limits enforced in code."""

    kelly_scale: float = Field(0.5, gt=0, le=1, description="Fraction of the full Kelly bet to take (half-Kelly by default).")
    neutral_weight: float = Field(
        0.5, ge=-1, le=1,
        description="Strategic weight the Kelly bet is added to: the position a buy or sell aims at when the direction "
        "probability carries no edge. 0 is pure Kelly (flat without an edge); 0.5 holds half the market when the signal is "
        "uninformative, so an agent without skill tracks buy-and-hold's Sharpe instead of sitting in cash. Hard limits still apply.",
    )
    kelly_model: Literal["edge", "binary"] = Field(
        "edge",
        description="edge: neutral_weight plus kelly_scale times the Kelly weight of the direction probability's edge for a "
        "return that wins or loses a few per cent (agents.risk.edge_kelly_fraction); 0 edge = the neutral weight. binary: "
        "the Kelly bet of a wager that loses its whole stake, on the window's up share shifted by the edge (the first "
        "release's sizing, kept as an ablation).",
    )
    payoff_window_days: int = Field(60, ge=10, description="Sessions of past returns for the win/loss payoff ratio.")
    cvar_alpha: float = Field(0.05, gt=0, lt=0.5, description="Tail probability of the historical CVaR.")
    cvar_budget: float = Field(
        0.02, gt=0, le=1, description="Largest one-day CVaR loss of a position, as a fraction of equity."
    )
    max_position_fraction: float = Field(1.0, gt=0, le=1, description="Hard cap on one ticker's weight.")
    max_daily_turnover: float = Field(1.0, gt=0, le=2, description="Hard cap on the weight traded per ticker and session.")
    min_trade_weight: float = Field(0.02, ge=0, lt=1, description="Weight changes smaller than this are not traded (saves costs).")
    sizing: Literal["kelly", "fixed"] = Field(
        "kelly",
        description="kelly: scaled Kelly under the CVaR budget. fixed: a buy aims at +fixed_weight and a sell at -fixed_weight "
        "(0 when long-only), with no Kelly and no CVaR cap (the 'fixed sizing' ablation); hard limits apply either way.",
    )
    fixed_weight: float = Field(1.0, gt=0, le=1, description="Target |weight| of a buy or sell when sizing is fixed.")


class EpisodeConfig(_Config):
    """FinMem/FinCon-style episodes: a training period (memory and beliefs warm up) then an out-of-sample test."""

    train_days: int = Field(80, ge=1, description="Sessions in the training period (reflection and adaptation on).")
    test_days: int | None = Field(None, ge=1, description="Sessions in the test period; None means to the end of the data.")
    warmup_days: int = Field(
        30, ge=0, description="Sessions at the start whose data is only history for indicators (no decisions)."
    )
    refit_every_days: int = Field(
        20, ge=1, description="Refit the reward adapter on matured rewards this often (training and, online, test)."
    )
    reflect_every_days: int = Field(
        5, ge=1, description="Write a reflection lesson from the rewards matured in the last this-many sessions."
    )
    adapter_label_horizons_days: tuple[int, ...] = Field(
        (1, 3),
        description="Horizons of the short-term momentum reward the adapter learns from: a news item becomes a training example "
        "once all of them have matured, labelled with sum_h (p[t+h] - p[t]) / p[t] (the reward of a unit long position).",
    )
    bootstrap_from_history: bool = Field(
        True,
        description="At the first decision, turn the warm-up period's news (whose label horizons have already matured) into "
        "training examples and fit the adapter. Point-in-time safe: only history public by the first decision is used.",
    )
    bootstrap_judge_sessions: int = Field(
        40, ge=0, le=2000,
        description="At the first decision the news analyst also judges the news of the last this-many warm-up sessions, so "
        "the judgement calibrator (agents.adaptation) can learn before the first trade how far the analyst's calls predict "
        "returns. 0: it learns from in-run judgements only. Costs one choice per item on the analyst's backend.",
    )
    lesson_max_tokens: int = Field(32, ge=4, le=512, description="Most tokens a reflection lesson or belief update may generate.")
    reflection: bool = Field(
        True,
        description="Write reflection lessons and episode-end belief updates. False is the 'no reflection' ablation; the "
        "reward adapter still refits (that is learning.enabled).",
    )


class ScenarioConfig(_Config):
    """A whole run: data, broker, memory, LLM backends, learning, rewards, agents and episodes."""

    name: str = Field("scenario", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Scenario name; prefixes the run id.")
    seed: int = Field(
        0, ge=0,
        description="The run's seed. Every random choice derives from it unless a section sets its own: the synthetic market "
        "(data.seed), the reward adapter's initialisation and batch order (learning.seed), sampled text of local backends "
        "(llm.backends.<name>.seed), the random baseline and RL training.",
    )
    runs_dir: Path = Field(Path("runs"), description="Directory under which each run gets its own folder.")
    cache_dir: Path = Field(Path(".cache/tradegraph"), description="Cache for fetched data and converted models.")
    data: DataConfig = Field(default_factory=SyntheticConfig, description="Market data source.")
    broker: BrokerConfig = Field(default_factory=BrokerConfig, description="Execution, costs and hard broker limits.")
    memory: MemoryConfig = Field(default_factory=MemoryConfig, description="Layered vector memory.")
    llm: LLMConfig = Field(default_factory=LLMConfig, description="LLM backends, per-agent choice, cache and budget.")
    learning: LearningConfig = Field(default_factory=LearningConfig, description="Reward-driven adaptation of the local model.")
    rewards: RewardConfig = Field(default_factory=RewardConfig, description="Multi-timescale momentum reward.")
    analysts: AnalystsConfig = Field(default_factory=AnalystsConfig, description="Analyst agents.")
    direction: DirectionConfig = Field(default_factory=DirectionConfig, description="Direction agent.")
    risk: RiskConfig = Field(default_factory=RiskConfig, description="Quantity-and-risk agent and hard limits.")
    episode: EpisodeConfig = Field(default_factory=EpisodeConfig, description="Training and test periods.")
    anonymize: AnonymizeConfig = Field(
        default_factory=AnonymizeConfig, description="Alias tickers, names and dates in every prompt (memorization probe)."
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_seeds(cls, raw: Any) -> Any:
        """Sections that leave their seed out take the run's ``seed`` (written into the validated
        config, so the run id and config.json say which seed each part used)."""
        if not isinstance(raw, dict) or "seed" not in raw:
            return raw
        seed = raw["seed"]
        raw = dict(raw)
        data = raw.get("data")
        if data is None:
            raw["data"] = {"kind": "synthetic", "seed": seed}
        elif isinstance(data, dict) and data.get("kind", "synthetic") == "synthetic" and "seed" not in data:
            raw["data"] = {**data, "kind": "synthetic", "seed": seed}
        learning = raw.get("learning")
        if learning is None:
            raw["learning"] = {"seed": seed}
        elif isinstance(learning, dict) and "seed" not in learning:
            raw["learning"] = {**learning, "seed": seed}
        llm = raw.get("llm")
        if isinstance(llm, dict) and isinstance(llm.get("backends"), dict):
            backends = {}
            for key, backend in llm["backends"].items():
                local = isinstance(backend, dict) and backend.get("kind", "local") == "local"
                backends[key] = {**backend, "seed": seed} if local and "seed" not in backend else backend
            raw["llm"] = {**llm, "backends": backends}
        return raw

    @model_validator(mode="after")
    def _check_agents(self) -> ScenarioConfig:
        allowed = [a.value for a in AgentName]
        unknown = sorted(set(self.llm.agents) - set(allowed))
        if unknown:
            raise ValueError(f"llm.agents: unknown agent(s) {unknown}; the agents are {allowed}")
        if self.learning.enabled and self.learning.features == "hidden_states":
            self.featurizer_backend()  # raises if no local backend can serve the adapter's hidden states
        return self

    def featurizer_backend(self) -> str:
        """The local backend whose model gives the reward adapter its hidden states: ``learning.backend``
        if set, else the news analyst's backend if it is local, else the only local backend."""
        backends = self.llm.backends
        local = [name for name, b in backends.items() if getattr(b, "kind", "") == "local"]
        name = self.learning.backend
        if name is not None:
            if name not in local:
                raise ValueError(f"learning.backend: {name!r} is not a local backend; local backends: {local}")
            return name
        news = self.llm.backend_name(AgentName.NEWS_ANALYST.value)
        if news in local:
            return news
        if len(local) == 1:
            return local[0]
        raise ValueError(
            f"learning: the reward adapter reads hidden states of a local model, and the news analyst's backend {news!r} "
            f"is not local; set learning.backend to one of {local} (or learning.enabled: false)"
        )

    @model_validator(mode="after")
    def _risk_within_broker(self) -> ScenarioConfig:
        labels = self.episode.adapter_label_horizons_days
        if not labels or any(h <= 0 for h in labels) or list(labels) != sorted(set(labels)):
            raise ValueError(
                f"episode.adapter_label_horizons_days must be positive, unique and increasing, got {list(labels)}"
            )
        if self.risk.max_position_fraction > self.broker.max_position_fraction:
            raise ValueError(
                f"risk.max_position_fraction ({self.risk.max_position_fraction}) exceeds "
                f"broker.max_position_fraction ({self.broker.max_position_fraction}); lower the former"
            )
        return self

    def config_hash(self) -> str:
        """Short hash of the canonical config; part of the run id so a resume can refuse a changed config."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:10]

    def run_id(self) -> str:
        return f"{self.name}-{self.config_hash()}"


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: the field path, the bad value and what is allowed."""
    lines = [f"{source}: invalid scenario ({exc.error_count()} problem(s))"]
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p in {"synthetic", "yfinance", "csv"}))
        value = err.get("input")
        shown = json.dumps(value, default=str) if not isinstance(value, dict) else "{...}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        if err["type"] == "extra_forbidden":
            lines.append(f"  - {loc}: unknown field (value {shown}); check the spelling against the schema")
        else:
            lines.append(f"  - {loc}: {err['msg']} (got {shown})")
    return "\n".join(lines)


def parse_scenario(raw: Any, source: str = "scenario") -> ScenarioConfig:
    """Validate an already-parsed mapping."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a scenario must be a mapping of fields, got {type(raw).__name__}")
    try:
        return ScenarioConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> ScenarioConfig:
    """Read and validate a YAML scenario. ``overrides`` maps dotted paths to values (e.g. ``{"seed": 3}``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"scenario file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    raw = {} if raw is None else raw
    return parse_scenario(apply_overrides(raw, overrides), str(path))


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Set dotted paths (``{"data.signal": 0}``) in a raw scenario mapping, in place; returns it."""
    for dotted, value in (overrides or {}).items():
        target = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
        target[leaf] = value
    return raw


def scenario_json_schema() -> dict[str, Any]:
    """The JSON schema of scenario files (exported to docs/scenario.schema.json)."""
    return ScenarioConfig.model_json_schema()
