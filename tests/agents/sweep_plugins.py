"""Cell runners for the sweep tests, loaded by name ('tests.agents.sweep_plugins:...') like an RL method would be."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from env.errors import DataError


def slow(config: Any, run_dir: Path, params: dict[str, Any]) -> None:
    """A baseline (``params["strategy"]``) after a pause, so a test can SIGKILL the sweep between
    cells; each completed execution appends its cell id to ``<out>/executions.log``."""
    from agents.sweep import resolve_runner

    time.sleep(float(params.get("sleep_s", 0.4)))
    resolve_runner(params.get("strategy", "buy_and_hold"))(config, run_dir, {})
    with (run_dir.parent.parent / "executions.log").open("a", encoding="utf-8") as fh:
        fh.write(run_dir.name + "\n")


def broken(config: Any, run_dir: Path, params: dict[str, Any]) -> None:
    """A strategy whose every cell fails, the way a bad data window would."""
    raise DataError(f"broken strategy refuses seed {config.seed}")
