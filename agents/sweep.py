"""Sweeps: scenario variants × grid overrides × seeds × strategies, run on Ray, one run folder per cell.

    python run.py sweep scenarios/sweeps/learning_eval.yaml [--address ray://host:10001] [--inline]

A sweep file (``SweepConfig``) names a base scenario, named ``variants`` (override sets, e.g. the
ablations), a ``grid`` (every combination of the listed values), ``seeds`` and ``strategies``.
Each cell is an ordinary run folder ``<out>/cells/<run_id>`` (``config.json``, ``metrics.json``,
``equity.csv``, ``fills.csv``, ``baselines.json``; the agent's also has its traces and
checkpoints). A cell whose ``metrics.json`` exists is finished and skipped, so a killed sweep
resumes where it was; an agent cell killed mid-run resumes from its checkpoint. A failed cell is
recorded with its error (``errors/<cell>.txt`` and the table's ``error`` column) and the others go
on. ``cells.log`` records every start, finish, skip and failure. Results: ``results.parquet`` and
``results.csv``, one row per cell.

Strategies are pluggable by name: ``agent`` (agents.runtime.execute), each baseline of
``env.baselines`` (``buy_and_hold``, ``macd``, ...), or ``"package.module:function"`` for a runner
``fn(config, run_dir, params)`` that writes at least ``metrics.json`` into ``run_dir`` (RL
methods plug in this way).

With ``--address`` the cells run on an existing Ray cluster: its workers import this checkout
through ``PYTHONPATH`` (so each node needs it at the same path) and all cells are submitted at once,
the cluster's scheduler deciding how many run together.
"""

from __future__ import annotations

import copy
import fcntl
import importlib
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agents.config import ScenarioConfig, apply_overrides, format_validation_error, parse_scenario
from env.errors import ConfigError, TradegraphError

REPO = Path(__file__).resolve().parents[1]
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
LOG_FILE = "cells.log"
FULL_VARIANT = "full"
ROW_METRICS = ("sharpe", "cumulative_return", "max_drawdown", "sortino", "annual_volatility", "exposure", "turnover")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StrategySpec(_Config):
    """One strategy of the sweep: a registered name or ``module:function``, with its parameters."""

    name: str = Field(description="'agent', a baseline of env.baselines, or 'package.module:function' (a cell runner).")
    params: dict[str, Any] = Field(default_factory=dict, description="Parameters passed to the strategy (baseline params).")
    label: str | None = Field(None, description="Name in the results table (default: the name).")

    @property
    def key(self) -> str:
        return self.label or self.name.rsplit(":", 1)[-1]


class SweepResources(_Config):
    """What each cell may use, and the local cluster's size."""

    num_cpus: int = Field(2, ge=1, le=512, description="CPUs of the local Ray cluster started when no --address is given.")
    cpus_per_cell: float = Field(1.0, gt=0, le=64, description="Ray CPUs reserved by each cell (cells run at once = num_cpus / this).")
    local_model_threads: int = Field(1, ge=1, le=64, description="Threads of the local model in agent cells (overrides llm.backends.local.threads).")


class SweepConfig(_Config):
    """A sweep file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="Sweep name; the default output folder is runs/sweeps/<name>.")
    scenario: Path = Field(description="Base scenario YAML (relative to the sweep file).")
    seeds: list[int] = Field(min_length=1, description="Seeds; each is written to every key of seed_keys.")
    seed_keys: list[str] = Field(["seed", "data.seed"], min_length=1, description="Dotted scenario keys that take the cell's seed.")
    strategies: list[StrategySpec] = Field(min_length=1, description="Strategies run on every (variant, grid point, seed).")
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {FULL_VARIANT: {}},
        description="Named override sets (dotted key -> value); an ablation sweep names the complete agent 'full'.",
    )
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="Dotted key -> values; every combination is a grid point.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Overrides applied to every cell first.")
    out: Path | None = Field(None, description="Output folder (default runs/sweeps/<name>, relative to the working directory).")
    resources: SweepResources = Field(default_factory=SweepResources, description="Per-cell resources and the local cluster size.")
    warm_cache: list[Path] = Field(
        default_factory=list,
        description="Folders of earlier runs (run folders directly inside, or a sweep's cells/): a fresh agent cell starts "
        "with every LLM answer the runs there on the same data (equal `data` section) recorded, so it calls the model "
        "only for prompts they never saw. Relative to the working directory.",
    )

    @field_validator("strategies", mode="before")
    @classmethod
    def _names_as_specs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value


@dataclass(frozen=True)
class Cell:
    """One run of the sweep."""

    cell_id: str  # the run id, which is also the folder name
    strategy: StrategySpec
    variant: str
    point: dict[str, Any]
    seed: int
    config: ScenarioConfig
    warm: tuple[Path, ...] = ()

    @property
    def run_dir(self) -> Path:
        return Path(self.config.runs_dir) / self.cell_id


def load_sweep(path: str | Path) -> tuple[SweepConfig, Path]:
    """The validated sweep and the base scenario's resolved path."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        sweep = SweepConfig.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc
    scenario = sweep.scenario if sweep.scenario.is_absolute() else (path.parent / sweep.scenario)
    if not scenario.is_file():
        # also accept a path relative to the working directory (e.g. scenarios/demo.yaml)
        scenario = sweep.scenario if sweep.scenario.is_file() else scenario
    if not scenario.is_file():
        raise ConfigError(f"{path}: scenario {sweep.scenario} not found (relative to the sweep file or the working directory)")
    return sweep, scenario


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in text)


def expand_cells(sweep: SweepConfig, scenario_path: Path, out_dir: Path) -> list[Cell]:
    """Every cell, its scenario validated now (a bad override fails before anything runs)."""
    base = yaml.safe_load(scenario_path.read_text(encoding="utf-8")) or {}
    # Absolute folders: a Ray worker need not share the driver's working directory.
    out_dir = Path(out_dir).resolve()
    cache_dir = Path(base.get("cache_dir") or ScenarioConfig.model_fields["cache_dir"].default)
    base["cache_dir"] = str(cache_dir if cache_dir.is_absolute() else cache_dir.resolve())
    for folder in sweep.warm_cache:
        if not Path(folder).is_dir():
            raise ConfigError(f"sweep {sweep.name}: warm_cache folder {folder} does not exist")
    keys = list(sweep.grid)
    points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(sweep.grid[k] for k in keys))] or [{}]
    cells, seen = [], set()
    for variant, variant_overrides in sweep.variants.items():
        for point in points:
            for seed in sweep.seeds:
                for strategy in sweep.strategies:
                    raw = copy.deepcopy(base)
                    overrides = {**sweep.overrides, **variant_overrides, **point}
                    overrides.update({key: seed for key in sweep.seed_keys})
                    if strategy.name == "agent" and "local" in ((raw.get("llm") or {}).get("backends") or {}):
                        overrides["llm.backends.local.threads"] = sweep.resources.local_model_threads
                    tag = "".join(f"-{_slug(str(v))}" for v in point.values())
                    overrides["name"] = _slug(f"{strategy.key}-{variant}{tag}-s{seed}")[:64]
                    overrides["runs_dir"] = str(out_dir / "cells")
                    source = f"{scenario_path} (sweep {sweep.name}: variant {variant!r}, point {point}, seed {seed}, {strategy.key})"
                    config = parse_scenario(apply_overrides(raw, overrides), source)
                    warm = tuple(Path(d).resolve() for d in sweep.warm_cache) if strategy.name == "agent" else ()
                    cell = Cell(config.run_id(), strategy, variant, point, seed, config, warm)
                    if cell.cell_id in seen:
                        raise ConfigError(f"sweep {sweep.name}: two cells share run id {cell.cell_id}; give the strategies distinct labels")
                    seen.add(cell.cell_id)
                    cells.append(cell)
    return cells


# -- cell runners ---------------------------------------------------------------------------------
def _run_agent(config: ScenarioConfig, run_dir: Path, params: dict[str, Any]) -> None:
    from agents.runtime import has_checkpoint, execute

    if params:
        raise ConfigError(f"the agent takes its settings from scenario overrides, not params (got {sorted(params)})")
    resume = has_checkpoint(run_dir / "checkpoints.sqlite")
    outcome = execute(config, resume=resume, progress=False, run_id=run_dir.name)
    if not outcome.finished:
        raise TradegraphError(f"agent run {outcome.run_id} did not finish: {outcome.message}")


def _baseline_runner(name: str) -> Callable[[ScenarioConfig, Path, dict[str, Any]], None]:
    def run(config: ScenarioConfig, run_dir: Path, params: dict[str, Any]) -> None:
        from agents.evaluation import json_safe
        from agents.runtime import load_data, schedule_for
        from env.baselines import make_strategy
        from env.engine import run_backtest
        from env.stats import run_statistics

        data = load_data(config)
        sched = schedule_for(config, data)
        window = {"start": sched.test_start, "end": sched.end_day + 1}
        kwargs = {"seed": config.seed, **params} if name == "random" else dict(params)
        result = run_backtest(data, make_strategy(name, **kwargs), config.broker, **window)
        bh = run_backtest(data, make_strategy("buy_and_hold"), config.broker, **window)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(config.model_dump_json(indent=2), encoding="utf-8")
        result.equity.rename("equity").rename_axis("date").to_csv(run_dir / "equity.csv")
        result.fills.to_csv(run_dir / "fills.csv", index=False)
        (run_dir / "baselines.json").write_text(json.dumps({"buy_and_hold": bh.metrics}, indent=2), encoding="utf-8")
        stats = json_safe(run_statistics(result.equity.to_numpy(), seed=config.seed))
        # metrics.json last: its presence marks the cell finished.
        (run_dir / "metrics.json").write_text(json.dumps({**result.metrics, "statistics": stats}, indent=2), encoding="utf-8")

    return run


def resolve_runner(name: str) -> Callable[[ScenarioConfig, Path, dict[str, Any]], None]:
    """The cell runner of a strategy name (see the module docstring)."""
    from env.baselines import STRATEGY_NAMES

    if name == "agent":
        return _run_agent
    if name in STRATEGY_NAMES:
        return _baseline_runner(name)
    module_name, sep, attr = name.partition(":")
    if not sep:
        raise ConfigError(f"unknown strategy {name!r}; choose 'agent', one of {list(STRATEGY_NAMES)}, or 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"strategy {name!r}: cannot import {module_name}: {exc}") from exc
    runner = getattr(module, attr, None)
    if not callable(runner):
        raise ConfigError(f"strategy {name!r}: {module_name} has no callable {attr!r}")
    return runner


def _get(d: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)  # type: ignore[assignment]
    return d


def cell_row(cell: Cell, status: str, error: str = "", wall_s: float | None = None) -> dict[str, Any]:
    """The results-table row of a cell, read back from its folder."""
    row: dict[str, Any] = {
        "cell_id": cell.cell_id, "strategy": cell.strategy.key, "variant": cell.variant, "seed": cell.seed,
        "point": json.dumps(cell.point, sort_keys=True), "status": status, "error": error, "run_dir": str(cell.run_dir),
        "wall_s": wall_s,
    }
    metrics = _read(cell.run_dir / "metrics.json")
    baselines = _read(cell.run_dir / "baselines.json")
    for key in ROW_METRICS:
        row[key] = _num(metrics.get(key))
    row["bh_sharpe"] = _num(_get(baselines, "buy_and_hold", "sharpe"))
    row["bh_return"] = _num(_get(baselines, "buy_and_hold", "cumulative_return"))
    row["sharpe_lo"] = _num(_get(metrics, "statistics", "ci", "sharpe", "lo"))
    row["sharpe_hi"] = _num(_get(metrics, "statistics", "ci", "sharpe", "hi"))
    row["psr"] = _num(_get(metrics, "statistics", "psr"))
    row["sr_per_session"] = _num(_get(metrics, "statistics", "sr"))
    row["n_returns"] = _num(_get(metrics, "statistics", "n"))
    for key in ("tokens", "cost_usd", "model_calls", "seconds"):
        row[f"{key}_per_ticker_day"] = _num(_get(metrics, "cost", "test", "per_ticker_day", key))
    return row


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def run_cell(cell: Cell) -> dict[str, Any]:
    """Run one cell in this process (a Ray task calls exactly this); returns its row.

    The cell's folder is locked while it runs: a Ray worker orphaned by a SIGKILLed sweep can go
    on with its cell for a moment, so a resumed sweep waits for that lock (released when the
    orphan finishes or dies) and then takes the orphan's result instead of running the cell again.
    """
    cell.run_dir.mkdir(parents=True, exist_ok=True)
    with (cell.run_dir / ".cell.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (cell.run_dir / "metrics.json").is_file():
            return cell_row(cell, "done", wall_s=0.0)  # finished by the worker that held the lock
        started = time.perf_counter()
        if cell.warm:
            warm_start(cell)
        resolve_runner(cell.strategy.name)(cell.config, cell.run_dir, dict(cell.strategy.params))
        if not (cell.run_dir / "metrics.json").is_file():
            raise TradegraphError(f"strategy {cell.strategy.name!r} finished without writing {cell.run_dir / 'metrics.json'}")
        return cell_row(cell, "done", wall_s=time.perf_counter() - started)


def warm_sources(config: ScenarioConfig, folders: tuple[Path, ...]) -> list[Path]:
    """The LLM caches of the runs in ``folders`` (``<folder>/*/`` and ``<folder>/cells/*/``) whose
    ``data`` section equals ``config``'s, sorted by path."""
    data = config.model_dump(mode="json")["data"]
    found = []
    for folder in folders:
        for config_file in sorted([*folder.glob("*/config.json"), *folder.glob("cells/*/config.json")]):
            cache = config_file.parent / "llm_cache.sqlite"
            if not cache.is_file():
                continue
            try:
                if json.loads(config_file.read_text(encoding="utf-8")).get("data") == data:
                    found.append(cache)
            except (OSError, ValueError):
                continue  # an unreadable folder is not a source
    return found


def seed_llm_cache(config: ScenarioConfig, run_dir: Path, folders: tuple[Path, ...]) -> int | None:
    """Start a fresh run's LLM cache from the answers of earlier runs in ``folders`` on the same data.

    Only before the run's first step (no checkpoint, no cache yet) and only for the default cache
    file in mode auto or replay. The cache becomes the union of ``warm_sources`` (``merge_caches``);
    what was merged is recorded in ``warm_cache.json`` next to it. Returns the number of answers
    merged, or None when nothing was seeded. Used by sweep cells and by ``eval_synthetic``.
    """
    from agents.runtime import has_checkpoint

    llm = config.llm
    target = run_dir / "llm_cache.sqlite"
    if llm.cache.path or llm.cache.mode.value not in ("auto", "replay") or target.exists():
        return None
    if has_checkpoint(run_dir / "checkpoints.sqlite"):
        return None
    sources = warm_sources(config, folders)
    if not sources:
        return None
    from agents.llm.cache import merge_caches

    run_dir.mkdir(parents=True, exist_ok=True)
    answers = merge_caches(target, sources)
    (run_dir / "warm_cache.json").write_text(
        json.dumps({"sources": [str(s) for s in sources], "answers": answers}, indent=2), encoding="utf-8")
    return answers


def warm_start(cell: Cell) -> None:
    """Seed a fresh agent cell's LLM cache from the sweep's ``warm_cache`` runs (``seed_llm_cache``)."""
    seed_llm_cache(cell.config, cell.run_dir, cell.warm)


# -- the sweep ------------------------------------------------------------------------------------
class _Log:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, event: str, cell_id: str, extra: str = "") -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(f"{time.time():.3f} {event} {cell_id}{(' ' + extra) if extra else ''}\n")


def _progress_line(done: int, running: int, failed: int, pending: int, durations: list[float], slots: int) -> str:
    if durations and (running or pending):
        eta_s = float(np.mean(durations)) * math.ceil((running + pending) / max(slots, 1))
        eta = time.strftime("%H:%M:%S", time.gmtime(eta_s))
    else:
        eta = "--:--:--" if running or pending else "00:00:00"
    return f"[sweep] done {done} · running {running} · failed {failed} · pending {pending} · ETA {eta}"


def _write_table(rows: list[dict[str, Any]], out_dir: Path) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    table.to_csv(out_dir / RESULTS_CSV, index=False)
    table.to_parquet(out_dir / RESULTS_PARQUET, index=False)
    return table


def run_sweep(sweep: SweepConfig, scenario_path: Path, *, out_dir: Path | None = None, address: str | None = None,
              inline: bool = False, stream: TextIO = sys.stderr) -> pd.DataFrame:
    """Run every unfinished cell (on Ray unless ``inline``) and write the results table."""
    out_dir = Path(out_dir or sweep.out or Path("runs") / "sweeps" / sweep.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "errors").mkdir(exist_ok=True)
    cells = expand_cells(sweep, scenario_path, out_dir)
    log = _Log(out_dir / LOG_FILE)
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for cell in cells:
        if (cell.run_dir / "metrics.json").is_file():
            log.write("skip", cell.cell_id)
            rows[cell.cell_id] = cell_row(cell, "done")
        else:
            todo.append(cell)
    failed = 0
    durations: list[float] = []
    slots = max(1, int(sweep.resources.num_cpus // sweep.resources.cpus_per_cell)) if not inline else 1

    def finish(cell: Cell, row: dict[str, Any] | None, error: str) -> None:
        nonlocal failed
        if row is None:
            failed += 1
            (out_dir / "errors" / f"{cell.cell_id}.txt").write_text(error, encoding="utf-8")
            log.write("failed", cell.cell_id, error.splitlines()[0][:200] if error else "")
            rows[cell.cell_id] = cell_row(cell, "failed", error=error.strip().splitlines()[-1][:500] if error else "")
        else:
            log.write("done", cell.cell_id)
            durations.append(float(row["wall_s"] or 0.0))
            rows[cell.cell_id] = row
        _write_table([rows[c.cell_id] for c in cells if c.cell_id in rows], out_dir)

    print(f"[sweep] {sweep.name}: {len(cells)} cells, {len(cells) - len(todo)} already finished, output {out_dir}", file=stream, flush=True)
    if inline:
        for i, cell in enumerate(todo):
            log.write("start", cell.cell_id)
            print(_progress_line(len(rows) - failed, 1, failed, len(todo) - i - 1, durations, 1), file=stream, flush=True)
            try:
                finish(cell, run_cell(cell), "")
            except (TradegraphError, ValueError, OSError) as exc:  # bad data or config, I/O: the cell fails, the sweep goes on
                finish(cell, None, f"{type(exc).__name__}: {exc}")
    elif todo:
        _run_on_ray(sweep, todo, address, log, finish, lambda running, pending: print(
            _progress_line(len(rows) - failed, running, failed, pending, durations, slots), file=stream, flush=True))
    table = _write_table([rows[c.cell_id] for c in cells], out_dir)
    print(_progress_line(len(rows) - failed, 0, failed, 0, durations, slots), file=stream, flush=True)
    return table


def _run_on_ray(sweep: SweepConfig, todo: list[Cell], address: str | None, log: _Log,
                finish: Callable[[Cell, dict[str, Any] | None, str], None], show: Callable[[int, int], None]) -> None:
    import ray
    from ray.exceptions import RayError

    # Workers import this checkout's packages; each uses the thread count the cell is given.
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "OMP_NUM_THREADS": str(sweep.resources.local_model_threads), "OMP_WAIT_POLICY": "PASSIVE"}
    init = {"address": address} if address else {"num_cpus": sweep.resources.num_cpus}
    ray.init(**init, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        task = ray.remote(num_cpus=sweep.resources.cpus_per_cell, max_retries=0)(run_cell)
        slots = max(1, int(sweep.resources.num_cpus // sweep.resources.cpus_per_cell)) if not address else len(todo)
        queue = list(todo)
        running: dict[Any, Cell] = {}
        while queue or running:
            while queue and len(running) < slots:
                cell = queue.pop(0)
                log.write("start", cell.cell_id)
                running[task.remote(cell)] = cell
            show(len(running), len(queue))
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                cell = running.pop(ref)
                try:
                    finish(cell, ray.get(ref), "")
                except RayError as exc:  # the task raised (its traceback is in the message) or its worker died
                    finish(cell, None, str(exc))
    finally:
        ray.shutdown()


# -- summaries ------------------------------------------------------------------------------------
def summarize(table: pd.DataFrame) -> dict[str, Any]:
    """Per (strategy, variant, point): mean Sharpe, the paired gap to buy-and-hold over seeds (CI,
    Wilcoxon), costs; and over all groups, the deflated Sharpe ratio of the best one with N = the
    number of groups and the PBO (CSCV) of their seed-concatenated returns."""
    from env.stats import deflated_sharpe_ratio, paired_gap, pbo_cscv

    groups = []
    done = table[table["status"] == "done"] if len(table) else table
    for (strategy, variant, point), g in table.groupby(["strategy", "variant", "point"], sort=False):
        ok = g[g["status"] == "done"]
        sharpe = ok["sharpe"].fillna(0.0).to_numpy()  # no position all period: undefined Sharpe, counted flat
        bh = ok["bh_sharpe"].fillna(0.0).to_numpy()
        gap = paired_gap(sharpe, bh) if len(ok) else {"mean_gap": math.nan, "lo": math.nan, "hi": math.nan, "p_wilcoxon": math.nan}
        groups.append({
            "strategy": strategy, "variant": variant, "point": point, "n": int(len(g)), "failed": int((g["status"] != "done").sum()),
            "sharpe": float(np.mean(sharpe)) if len(ok) else math.nan, "bh_sharpe": float(np.mean(bh)) if len(ok) else math.nan,
            "gap": gap["mean_gap"], "lo": gap["lo"], "hi": gap["hi"], "p_wilcoxon": gap["p_wilcoxon"],
            "sr_per_session": float(ok["sr_per_session"].mean()) if len(ok) else math.nan,
            "n_returns": float(ok["n_returns"].mean()) if len(ok) else math.nan,
            "tokens_per_ticker_day": float(ok["tokens_per_ticker_day"].mean()) if len(ok) else math.nan,
            "seconds_per_ticker_day": float(ok["seconds_per_ticker_day"].mean()) if len(ok) else math.nan,
        })
    selection: dict[str, Any] = {}
    scored = [g for g in groups if math.isfinite(g["sr_per_session"])]
    if len(scored) >= 2:
        best = max(scored, key=lambda g: g["sr_per_session"])
        variance = float(np.var([g["sr_per_session"] for g in scored], ddof=1))
        dsr = deflated_sharpe_ratio(best["sr_per_session"], int(best["n_returns"]), n_trials=len(scored), sr_variance=variance)
        selection = {"n_trials": len(scored), "best": f"{best['strategy']}/{best['variant']}", **dsr,
                     "pbo": _pbo(done, scored, pbo_cscv)}
    return {"groups": groups, "selection": selection}


def _pbo(done: pd.DataFrame, groups: list[dict[str, Any]], pbo_cscv: Callable[..., dict[str, Any]]) -> float:
    """PBO of the groups' returns, each group's cells concatenated in seed order (equal lengths needed)."""
    columns = []
    for g in groups:
        cells = done[(done["strategy"] == g["strategy"]) & (done["variant"] == g["variant"]) & (done["point"] == g["point"])]
        parts = []
        for run_dir in cells.sort_values("seed")["run_dir"]:
            path = Path(run_dir) / "equity.csv"
            if not path.is_file():  # a table moved without its cells: no PBO
                return math.nan
            equity = pd.read_csv(path)["equity"].to_numpy(dtype=float)
            parts.append(equity[1:] / equity[:-1] - 1.0)
        columns.append(np.concatenate(parts) if parts else np.array([]))
    lengths = {c.size for c in columns}
    if len(lengths) != 1 or min(lengths) < 32:
        return math.nan
    matrix = np.column_stack(columns)
    splits = max(2, min(16, (matrix.shape[0] // 8) // 2 * 2))
    return float(pbo_cscv(matrix, n_splits=splits)["pbo"])


def ablation_effects(table: pd.DataFrame, metric: str = "sharpe", strategy: str = "agent") -> list[dict[str, Any]]:
    """Each variant's marginal effect against the ``full`` variant: the paired gap of ``metric``
    (variant minus full) over the seeds both finished, with a bootstrap CI and a Wilcoxon p-value.
    Negative means the removed component helped. Empty without a ``full`` variant."""
    from env.stats import paired_gap

    if not len(table):
        return []
    ok = table[(table["status"] == "done") & (table["strategy"] == strategy)]
    full = ok[ok["variant"] == FULL_VARIANT].set_index(["point", "seed"])[metric].fillna(0.0)
    if full.empty:
        return []
    effects = []
    for variant, g in ok[ok["variant"] != FULL_VARIANT].groupby("variant", sort=False):
        values = g.set_index(["point", "seed"])[metric].fillna(0.0)
        common = values.index.intersection(full.index)
        gap = paired_gap(values.loc[common].to_numpy(), full.loc[common].to_numpy())
        effects.append({"variant": variant, "n": int(gap["n"]), "mean_gap": gap["mean_gap"], "lo": gap["lo"], "hi": gap["hi"],
                        "p_wilcoxon": gap["p_wilcoxon"]})
    return effects


def format_summary(table: pd.DataFrame) -> str:
    """The printed sweep report: groups with their gap to buy-and-hold, selection statistics, ablations."""
    summary = summarize(table)
    lines = [f"{'strategy':<14}{'variant':<16}{'point':<18}{'cells':>6}{'fail':>5}{'Sharpe':>9}{'B&H':>8}{'gap':>8}{'95% CI':>18}{'p':>7}"]
    for g in summary["groups"]:
        ci = f"[{g['lo']:+.2f}, {g['hi']:+.2f}]"
        point = ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in json.loads(g["point"]).items()) or "-"
        lines.append(f"{g['strategy']:<14}{g['variant']:<16}{point[:17]:<18}{g['n']:>6}{g['failed']:>5}{g['sharpe']:>+9.2f}"
                     f"{g['bh_sharpe']:>+8.2f}{g['gap']:>+8.2f}{ci:>18}{g['p_wilcoxon']:>7.3f}")
    sel = summary["selection"]
    if sel:
        lines.append(f"\nbest of {sel['n_trials']} configurations: {sel['best']}; deflated Sharpe ratio {sel['dsr']:.3f} "
                     f"(SR0 {sel['sr0']:.4f} per session); PBO (CSCV) {sel['pbo']:.3f}")
    effects = ablation_effects(table)
    if effects:
        lines.append("\nablation: marginal effect on Sharpe of each variant against 'full' (negative: the component helped)")
        for e in effects:
            lines.append(f"  {e['variant']:<22} n={e['n']:<3} {e['mean_gap']:+.2f}  95% CI [{e['lo']:+.2f}, {e['hi']:+.2f}]  "
                         f"Wilcoxon p {e['p_wilcoxon']:.3f}")
    return "\n".join(lines)
