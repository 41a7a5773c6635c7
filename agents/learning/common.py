"""Small pieces the gated heads share (``judgement`` and ``window``): the evidence ramp of a gate,
a one-variable logistic regression and an atomic JSON save."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def evidence_ramp(z: float, evidence_min: float, evidence_full: float) -> float:
    """0 below ``evidence_min``, 1 at and above ``evidence_full``, linear in between."""
    if z < evidence_min:
        return 0.0
    if evidence_full <= evidence_min:
        return 1.0
    return float(min(1.0, (z - evidence_min) / (evidence_full - evidence_min)))


def logistic_1d(x: np.ndarray, y: np.ndarray, w: np.ndarray, ridge: float) -> tuple[float, float]:
    """Weighted logistic regression logit = a + b x by Newton's method, L2 ``ridge`` on b only."""
    a = b = 0.0
    for _ in range(50):
        z = np.clip(a + b * x, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        g = np.array([np.sum(w * (p - y)), np.sum(w * (p - y) * x) + ridge * b])
        h = w * p * (1 - p)
        hess = np.array([[h.sum() + 1e-9, (h * x).sum()], [(h * x).sum(), (h * x * x).sum() + ridge]])
        step = np.linalg.solve(hess, g)
        a, b = a - float(step[0]), b - float(step[1])
        if abs(step).max() < 1e-10:
            break
    return a, b


def clip_moves(r: np.ndarray, moves: float) -> np.ndarray:
    """Returns clipped at ``moves`` times their median non-zero magnitude, so one gap cannot decide a fit."""
    nonzero = np.abs(r[r != 0])
    cap = moves * float(np.median(nonzero)) if len(nonzero) else 0.0
    return np.clip(r, -cap, cap)


def save_json(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a temp file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
