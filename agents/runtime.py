"""Build a run's dependencies, compile the graph with the SQLite checkpointer, run or resume it,
and write the run directory's outputs (metrics, equity, fills, plot, baselines).

A run lives in ``<runs_dir>/<run_id>/`` with ``config.json``, ``checkpoints.sqlite``,
``journal.sqlite`` (the histories), ``traces.jsonl``, ``memory/``, ``adapter/``, ``llm_cache.sqlite`` and, when it finishes,
``metrics.json``, ``baselines.json``, ``equity.csv``, ``fills.csv``, ``equity.png``.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any


from agents.adaptation import AdapterHandle
from agents.anonymize import make_anonymizer
from agents.contamination import contamination_report
from agents.contamination import warn as warn_contamination
from agents.config import ScenarioConfig, apply_overrides, parse_scenario
from agents.deps import Deps
from agents.graph import build_graph
from agents.journal import Account, RunJournal
from agents.prompts import PromptLibrary
from agents.state import AgentName, Phase, RunState
from agents.trace import TraceWriter
from env.errors import BackendUnavailableError, BudgetExceededError, ConfigError, ResumeError
from env.market import MarketData

if TYPE_CHECKING:
    from agents.llm.base import LLM

RECURSION_LIMIT = 10_000_000  # the graph loops once per session; LangGraph counts every step
BASELINES = ("buy_and_hold", "random", "macd", "rsi")


@dataclass(frozen=True)
class Schedule:
    first_day: int
    test_start: int
    end_day: int


def schedule_for(config: ScenarioConfig, data: MarketData) -> Schedule:
    ep = config.episode
    first = ep.warmup_days
    test_start = first + ep.train_days
    end = len(data) - 1 if ep.test_days is None else test_start + ep.test_days - 1
    if end >= len(data) or test_start > end:
        need = ep.warmup_days + ep.train_days + (ep.test_days or 1)
        raise ConfigError(
            f"episode needs {need} sessions (warmup {ep.warmup_days} + train {ep.train_days} + test "
            f"{ep.test_days or 'at least 1'}) but the data has {len(data)}; lengthen the data or shorten the episode"
        )
    return Schedule(first, test_start, end)


def load_data(config: ScenarioConfig) -> MarketData:
    from env.sources import load_market

    return load_market(config.data, Path(config.cache_dir))


def _featurizer_model(config: ScenarioConfig) -> tuple[str | None, int]:
    """(model path, threads) of the local backend that gives the adapter its hidden states."""
    if not config.learning.enabled or config.learning.features != "hidden_states":
        return None, 1
    backend = config.llm.backends[config.featurizer_backend()]
    return backend.model_path, backend.threads


def build_deps(config: ScenarioConfig, data: MarketData, run_dir: Path, *, run_id: str, accounting_state: dict | None = None,
               cache_mode: str | None = None, cache_path: Path | None = None,
               llms: Mapping[AgentName, LLM] | None = None,
               wrap_llm: Callable[[AgentName, LLM], LLM] | None = None) -> tuple[Deps, Callable[[], None]]:
    """Everything the nodes need; returns (deps, close). ``llms`` replaces the configured backends
    (node tests and graph benchmarks pass ``ScriptedLLM``s); ``wrap_llm(agent, llm)`` wraps each
    agent's LLM (the evaluation's truth-reading analysts wrap the real ones)."""
    from agents.learning.adapter import make_featurizer
    from agents.llm.accounting import Accounting
    from agents.llm.cache import LLMCache
    from agents.llm.factory import LLMPool, make_llm
    from agents.llm.local_model import LocalModelRef
    from memory.factory import make_embedding_function, open_memory
    from memory.session_store import SessionMemoryStore

    llm_cfg = config.llm
    mode = cache_mode or llm_cfg.cache.mode.value
    cache = None
    if mode != "off":
        path = cache_path or (Path(llm_cfg.cache.path) if llm_cfg.cache.path else run_dir / "llm_cache.sqlite")
        cache = LLMCache(path, mode)
    accounting = (
        Accounting.from_state(accounting_state, llm_cfg.budget, llm_cfg.prices)
        if accounting_state
        else Accounting(llm_cfg.budget, llm_cfg.prices)
    )
    pool = LLMPool(llm_cfg)  # one backend per configured name, shared by the agents that use it
    if llms is None:
        llms = {agent: make_llm(llm_cfg, agent.value, cache=cache, accounting=accounting, pool=pool) for agent in AgentName}
    if wrap_llm is not None:
        llms = {agent: wrap_llm(agent, llm) for agent, llm in llms.items()}
    embed = None
    if config.memory.enabled:
        embed = make_embedding_function(config.memory, cache_path=Path(config.cache_dir) / "embeddings.sqlite")
        memory = open_memory(config.memory, run_dir, embedding_function=embed)
    else:
        memory = SessionMemoryStore(config.memory)
    journal = RunJournal(run_dir)
    model_path, threads = _featurizer_model(config)
    learning = config.learning

    def featurizer() -> Any:
        if learning.features == "embeddings":  # the memory's own embedder and its vector cache
            from agents.learning.features import EmbeddingFeaturizer
            from memory.factory import embedding_model_id

            vectors = embed or make_embedding_function(config.memory, cache_path=Path(config.cache_dir) / "embeddings.sqlite")
            return EmbeddingFeaturizer(vectors, embedding_model_id(config.memory), prompt_template=learning.template)
        # A ref: the weights (the same process-wide instance as the local backend's) load only
        # when a feature is missing from the cache, so a replay never loads them.
        local = LocalModelRef(model_path, threads=threads)
        return make_featurizer(local, learning, cache_dir=Path(config.cache_dir) / "features")

    anonymizer = make_anonymizer(config.anonymize, config.data.kind, data)  # None unless anonymize.enabled
    deps = Deps(
        config=config, data=data, llms=llms, memory=memory, prompts=PromptLibrary(transform=anonymizer),
        tracer=TraceWriter(run_dir, run_id), adapter=AdapterHandle(learning, run_dir, featurizer, transform=anonymizer),
        accounting=accounting, journal=journal, run_dir=run_dir,
    )

    def close() -> None:
        memory.close()
        journal.close()
        if hasattr(embed, "close"):
            embed.close()
        pool.close()
        if cache is not None:
            cache.close()

    return deps, close


class CompressedSerializer:
    """LangGraph's serializer with zlib around it: a checkpoint repeats the state's field names
    and memory ids, which compress ~4x; what the saver writes after every step shrinks with it.
    Values written without compression (type without ``+zlib``) still load."""

    SUFFIX = "+zlib"
    MIN_BYTES = 128  # smaller values (most channel writes) would only grow by zlib's framing

    def __init__(self, inner: Any, level: int = 6) -> None:
        self.inner = inner
        self.level = level

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        typ, data = self.inner.dumps_typed(obj)
        if len(data) < self.MIN_BYTES:
            return typ, data
        return typ + self.SUFFIX, zlib.compress(data, self.level)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        typ, payload = data
        if typ.endswith(self.SUFFIX):
            return self.inner.loads_typed((typ[: -len(self.SUFFIX)], zlib.decompress(payload)))
        return self.inner.loads_typed(data)


@contextmanager
def checkpointer(run_dir: Path) -> Iterator[Any]:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    from langgraph.checkpoint.sqlite import SqliteSaver

    from agents import state as state_module

    # Our state's own types are the only custom types a checkpoint may contain.
    allowed = [
        (state_module.__name__, name)
        for name in ("Action", "AnalystKind", "Phase", "ItemJudgement", "AnalystReport", "DirectionDecision",
                     "SizedOrder", "MaturedPart", "RunState")
    ]
    class RunSaver(SqliteSaver):
        """SqliteSaver with plain integer channel versions. The stock saver appends a random
        16-digit suffix to every channel's version (for concurrent branches of one thread, which a
        run never has); those digits are a third of each checkpoint and do not compress."""

        def get_next_version(self, current: Any, channel: Any) -> int:
            if current is None:
                return 1
            return (current if isinstance(current, int) else int(str(current).split(".")[0])) + 1

    conn = sqlite3.connect(run_dir / "checkpoints.sqlite", check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    try:
        yield RunSaver(conn, serde=CompressedSerializer(JsonPlusSerializer(allowed_msgpack_modules=allowed)))
    finally:
        conn.close()


def initial_state(config: ScenarioConfig, data: MarketData, sched: Schedule, run_id: str) -> RunState:
    from env.broker import Broker

    broker = Broker(data, config.broker)
    return RunState(
        run_id=run_id, day=sched.first_day, first_day=sched.first_day, test_start=sched.test_start,
        end_day=sched.end_day, prev_day=sched.first_day - 1, broker=broker.state_dict(history=False),
    )


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    finished: bool
    metrics: dict[str, float] | None
    baselines: dict[str, dict[str, float]] | None
    message: str = ""


def execute(config: ScenarioConfig, *, resume: bool, progress: bool = True, cache_mode: str | None = None,
            cache_path: Path | None = None, stop_after_sessions: int | None = None, run_id: str | None = None,
            data: MarketData | None = None, llms: Mapping[AgentName, LLM] | None = None,
            wrap_llm: Callable[[AgentName, LLM], LLM] | None = None) -> RunOutcome:
    """Run (or resume) the scenario to the end of its test period.

    ``run_id`` pins the folder on resume; ``data`` replaces the configured source (tests use it to
    run a poisoned or injected copy of a dataset through the same graph); ``llms`` replaces the
    configured backends and ``wrap_llm`` wraps them (see ``build_deps``).
    """
    run_id = run_id or config.run_id()
    run_dir = Path(config.runs_dir) / run_id
    ckpt = run_dir / "checkpoints.sqlite"
    if not resume and has_checkpoint(ckpt):
        raise ResumeError(f"run {run_id} already exists in {run_dir}; use `python run.py resume {run_id}` or delete the folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        (run_dir / "config.json").write_text(config.model_dump_json(indent=2), encoding="utf-8")
    data = data if data is not None else load_data(config)
    sched = schedule_for(config, data)
    contamination = contamination_report(
        config.llm, {config.llm.backend_name(agent.value) for agent in AgentName},
        data.dates[sched.test_start], data.dates[sched.end_day],
        anonymized=config.anonymize.enabled, synthetic=config.data.kind == "synthetic",
    )
    warn_contamination(contamination)
    thread = {"configurable": {"thread_id": run_id}, "recursion_limit": RECURSION_LIMIT}
    with checkpointer(run_dir) as saver:
        graph = None
        snapshot_values: dict[str, Any] = {}
        if resume:
            snapshot_values = _latest_checkpoint_values(saver)
        deps, close = build_deps(
            config, data, run_dir, run_id=run_id, accounting_state=snapshot_values.get("accounting") or None,
            cache_mode=cache_mode, cache_path=cache_path, llms=llms, wrap_llm=wrap_llm,
        )
        try:
            graph = build_graph(deps).compile(checkpointer=saver)
            snap = graph.get_state(thread)
            # A run killed before its first checkpoint has nothing to continue: it starts from the beginning.
            start_input = None if snap.values else initial_state(config, data, sched, run_id)
            # Finished means the finish node ran. An empty ``snap.next`` is not enough: after a kill
            # between a node's saved writes and the next checkpoint, LangGraph lists that node under
            # ``snap.tasks`` (done) and nothing under ``next``, yet the run has sessions left.
            if _run_is_done(snap.values):
                finished = True
            else:
                finished = _stream(graph, start_input, thread, sched, progress, stop_after_sessions)
            if not finished:
                return RunOutcome(run_id, run_dir, False, None, None, "stopped early; resume to continue")
        except BudgetExceededError as exc:
            return RunOutcome(
                run_id, run_dir, False, None, None,
                f"LLM budget exceeded: {exc}. State is saved at the last checkpoint; raise llm.budget and run "
                f"`python run.py resume {run_id} --set llm.budget.max_usd=...` to continue.",
            )
        except BackendUnavailableError as exc:
            return RunOutcome(
                run_id, run_dir, False, None, None,
                f"LLM backend {exc.backend!r} is failing: {exc}. State is saved at the last checkpoint; check "
                f"llm.backends.{exc.backend} (`python run.py doctor`) and run `python run.py resume {run_id}` to continue.",
            )
        finally:
            close()
    metrics, baselines = write_outputs(config, data, sched, run_dir)
    # Added to what write_outputs wrote (statistics, cost): cutoffs per backend, the test window, the warning.
    written = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    (run_dir / "metrics.json").write_text(json.dumps({**written, "contamination": contamination}, indent=2), encoding="utf-8")
    metrics = {**metrics, "contamination": contamination}
    return RunOutcome(run_id, run_dir, True, metrics, baselines)


def has_checkpoint(path: Path) -> bool:
    """Whether ``path`` (a run's ``checkpoints.sqlite``) holds at least one LangGraph checkpoint, i.e.
    whether the run has begun and must be resumed rather than started (a missing file or table means no)."""
    if not path.exists():
        return False
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT 1 FROM checkpoints LIMIT 1").fetchone() is not None
    except sqlite3.OperationalError:  # no table yet: the saver never wrote
        return False
    finally:
        conn.close()


def _latest_checkpoint_values(saver: Any) -> dict[str, Any]:
    """Latest checkpoint values without building the graph (to restore accounting before the LLMs exist)."""
    tuples = list(saver.list(None, limit=1))
    if not tuples:
        return {}
    return dict(tuples[0].checkpoint.get("channel_values", {}))


def _stream(graph: Any, start_input: Any, thread: dict, sched: Schedule, progress: bool, stop_after: int | None) -> bool:
    from tqdm import tqdm

    total = sched.end_day - sched.first_day + 1
    done_before = max(0, (graph.get_state(thread).values or {}).get("day", sched.first_day) - sched.first_day)
    bar = tqdm(total=total, initial=done_before, desc="sessions", unit="day", disable=not progress, file=sys.stderr, mininterval=1.0)
    sessions = 0
    try:
        for update in graph.stream(start_input, thread, stream_mode="updates", durability="sync"):
            if "close_session" in update:
                bar.update(1)
                sessions += 1
                if stop_after is not None and sessions >= stop_after:
                    return False
            if "finish" in update:
                return True
    finally:
        bar.close()
    return _run_is_done(graph.get_state(thread).values)


def _run_is_done(values: dict[str, Any] | None) -> bool:
    """True once the finish node's update (phase = done) is in the checkpointed state."""
    return bool(values) and str(values.get("phase", "")) == Phase.DONE.value


def news_references(config: ScenarioConfig, data: MarketData) -> dict[str, Any]:
    """The news reference strategies a run is compared with: the TF-IDF reader when the data has
    news (labelled like the adapter), and the truth-reading oracle on synthetic data (evaluation
    only: it is handed ``data.truth``, which no agent can reach)."""
    from env.news_baselines import make_news_strategy

    out: dict[str, Any] = {}
    if data.news:
        out["news_tfidf"] = make_news_strategy("news_tfidf", data, label_horizons_days=config.episode.adapter_label_horizons_days)
    if data.truth is not None and data.truth.item_sentiment:
        horizon = getattr(config.data, "signal_horizon_days", 3)
        out["news_oracle"] = make_news_strategy("news_oracle", data, horizon_days=horizon)
    return out


def write_outputs(config: ScenarioConfig, data: MarketData, sched: Schedule, run_dir: Path):
    """metrics.json (test period), baselines.json, equity.csv, fills.csv, train_equity.csv, equity.png."""
    from env.baselines import make_strategy
    from env.engine import run_backtest
    from env.metrics import compute_metrics
    from env.plot import plot_equity

    journal = RunJournal(run_dir)
    try:
        test, train = journal.ledger(data, Account.TEST), journal.ledger(data, Account.TRAIN)
        daily, fills = test.equity, test.fills
        train_equity, train_fills = train.equity, train.fills
    finally:
        journal.close()
    equity = daily["equity"]
    metrics = compute_metrics(
        equity, turnover=daily["traded_notional"] / daily["equity"], exposure=daily["gross_exposure"] / daily["equity"],
        risk_free_annual=0.0,
    )
    equity.rename("equity").rename_axis("date").to_csv(run_dir / "equity.csv")
    fills.to_csv(run_dir / "fills.csv", index=False)
    if len(train_equity):
        train_equity["equity"].rename_axis("date").to_csv(run_dir / "train_equity.csv")
        train_fills.to_csv(run_dir / "train_fills.csv", index=False)
    baselines, bh_equity = {}, None
    for name in BASELINES:
        params = {"seed": config.seed} if name == "random" else {}
        res = run_backtest(data, make_strategy(name, **params), config.broker, start=sched.test_start, end=sched.end_day + 1)
        baselines[name] = res.metrics
        if name == "buy_and_hold":
            bh_equity = res.equity
    for name, strategy in news_references(config, data).items():
        baselines[name] = run_backtest(data, strategy, config.broker, start=sched.test_start, end=sched.end_day + 1).metrics
    (run_dir / "metrics.json").write_text(json.dumps({**metrics, **_run_summary(config, data, equity, run_dir)}, indent=2), encoding="utf-8")
    (run_dir / "baselines.json").write_text(json.dumps(baselines, indent=2), encoding="utf-8")
    plot_equity(equity, run_dir / "equity.png", benchmark=bh_equity, title=f"tradegraph {run_dir.name}: test period", label="agent")
    return metrics, baselines


def _run_summary(config: ScenarioConfig, data: MarketData, equity: Any, run_dir: Path) -> dict[str, Any]:
    """metrics.json's "statistics" (bootstrap CIs, PSR) and "cost" (per ticker-day, from the traces) blocks (agents/evaluation.py)."""
    from agents.evaluation import json_safe, run_summary
    from agents.trace import read_traces

    return json_safe(run_summary(equity, read_traces(run_dir), len(data.tickers), seed=config.seed))


def load_run_config(runs_dir: Path, run_id: str, overrides: dict[str, Any] | None = None) -> ScenarioConfig:
    """The config a run was started with, pointed at the folder it was found in (a run folder that
    was moved or copied resumes where it now is, not where it was created)."""
    path = Path(runs_dir) / run_id / "config.json"
    if not path.is_file():
        raise ResumeError(f"no run {run_id!r} under {runs_dir} (looked for {path})")
    raw = apply_overrides(json.loads(path.read_text(encoding="utf-8")), overrides)
    config = parse_scenario(raw, str(path))
    if not overrides and config.run_id() != run_id:
        raise ResumeError(
            f"{path} no longer hashes to {run_id}: the run folder was edited, or an earlier release wrote it with "
            "defaults that have changed since (e.g. before CTranslate2 became the local backend's default runtime, "
            "config.json did not record the runtime); start it again as a new run"
        )
    return config.model_copy(update={"runs_dir": Path(runs_dir)})


def _cell(value: float | None) -> str:
    """A table cell; undefined metrics (a flat curve's Sharpe is written as null) print as 'n/a'."""
    return f"{'n/a':>14}" if value is None or value != value else f"{value:>14.4f}"


def metrics_table(agent: dict[str, float], baselines: dict[str, dict[str, float]]) -> str:
    keys = ("cumulative_return", "sharpe", "sortino", "annual_volatility", "max_drawdown", "calmar", "win_rate")
    cols = {"agent": agent, **baselines}
    header = f"{'metric':<20}" + "".join(f"{c:>14}" for c in cols)
    lines = [header, "-" * len(header)]
    for k in keys:
        lines.append(f"{k:<20}" + "".join(_cell(cols[c].get(k)) for c in cols))
    return "\n".join(lines)
