"""Cell runners for the sweep tests, loaded by name ('tests.agents.sweep_plugins:...') like an RL method would be."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from env.errors import DataError


def slow_buy_and_hold(config: Any, run_dir: Path, params: dict[str, Any]) -> None:
    """buy-and-hold after a pause, so a test can SIGKILL the sweep between cells."""
    from agents.sweep import resolve_runner

    time.sleep(float(params.get("sleep_s", 0.4)))
    resolve_runner("buy_and_hold")(config, run_dir, {})


def broken(config: Any, run_dir: Path, params: dict[str, Any]) -> None:
    """A strategy whose every cell fails, the way a bad data window would."""
    raise DataError(f"broken strategy refuses seed {config.seed}")
