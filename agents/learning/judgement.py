"""How far an analyst's call predicts returns: a one-feature calibration, learned from matured labels.

The news analyst answers each item with P(positive), P(negative), ...; its impact score is
P(pos) - P(neg). ``JudgementCalibrator`` turns that score into evidence the direction agent can add
up, and decides, from the run's own matured labels, how much of it to believe:

1. **Skill test.** The weighted correlation r between the scores and the matured outcomes (clipped
   at ``weight_cap`` median magnitudes, so one crash cannot decide) and its t-statistic
   ``t = r sqrt(n - 2) / sqrt(1 - r^2)``. One parameter cannot overfit, so the test is in-sample,
   and it reads the outcome's size, not only its sign: on 188 labels a perfect reader of tone had
   t = 3.6 while the reward adapter's out-of-fold log-loss test saw z = 0.0 (its labels were 88 %
   "up" in a bull run).
2. **Model.** A weighted logistic regression of the outcome's sign on the score (Newton, a light
   ridge on the slope), so its output is a probability.
3. **Gate.** ``shrink = clip((t - evidence_min) / (evidence_full - evidence_min), 0, 1)``; a
   negative slope, or t below ``evidence_min``, gives 0: the calls count for nothing.

``deviation(score)`` is ``shrink * slope * (score - mean score)``: the model's log-odds for this
call less its log-odds for the typical call of the training items (their mean score), exactly 0
without skill. The reference is the model's own prediction, so a typical call adds nothing to a
window's sum (batch calibration, as the direction agent centres its other evidence). The first
version read against the smoothed base rate instead: in a run-up with 98 % of labels "up", the
smoothing put that rate 0.3 log-odds below the model's intercept, so every item, negative calls
included, added +0.14 to +0.46, and 13 items in a window made a bullish signal of +3.9 out of
bearish news (seed 109, truth-reading analysts).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.learning.common import evidence_ramp, logistic_1d, save_json
from env.errors import DataError

FORMAT = "judgement-calibrator/2"


class JudgementCalibrator:
    """See the module docstring. ``fit`` on every matured (score, outcome) pair so far."""

    def __init__(self, *, evidence_min: float, evidence_full: float, weight_cap: float, min_examples: int, ridge: float = 1.0) -> None:
        self.evidence_min, self.evidence_full = evidence_min, evidence_full
        self.weight_cap, self.min_examples, self.ridge = weight_cap, min_examples, ridge
        self.intercept = 0.0
        self.slope = 0.0
        self.base_logit = 0.0
        self.shrink = 0.0
        self.report: dict[str, Any] = {"trained": False, "reason": "not fitted", "n_examples": 0, "shrink": 0.0}

    def fit(self, scores: Sequence[float], outcomes: Sequence[float]) -> dict[str, Any]:
        x, o = np.asarray(scores, dtype=float), np.asarray(outcomes, dtype=float)
        if x.shape != o.shape or not (np.isfinite(x).all() and np.isfinite(o).all()):
            raise DataError(f"judgement calibrator: {x.shape} scores and {o.shape} outcomes, all finite required")
        keep = o != 0
        x, o = x[keep], o[keep]
        n = len(x)
        self.intercept = self.slope = self.base_logit = self.shrink = 0.0

        def done(reason: str, **extra: Any) -> dict[str, Any]:
            self.report = {"trained": self.slope != 0.0, "reason": reason, "n_examples": int(n), "shrink": self.shrink,
                           "slope": self.slope, "intercept": self.intercept, **extra}
            return self.report

        if n < self.min_examples:
            return done(f"too few judged examples: {n} < {self.min_examples}")
        if np.ptp(x) < 1e-9:
            return done(f"the analyst gave every one of {n} items the same score {x[0]:+.3f}: no information")
        median = float(np.median(np.abs(o)))
        clipped = np.clip(o, -self.weight_cap * median, self.weight_cap * median)
        w = np.minimum(np.abs(o) / median, self.weight_cap)
        r = _weighted_corr(x, clipped, np.ones(n))
        t = r * math.sqrt(max(n - 2, 1)) / math.sqrt(max(1e-12, 1 - r * r))
        y = (o > 0).astype(float)
        a, b = logistic_1d(x, y, w, self.ridge)
        base = float((w * y).sum() + 1.0) / float(w.sum() + 2.0)
        # The reference of the deviations: the model's log-odds at the mean score of the training items.
        self.intercept, self.slope, self.base_logit = a, b, a + b * float(x.mean())
        ramp = 0.0 if b <= 0 else evidence_ramp(t, self.evidence_min, self.evidence_full)
        self.shrink = float(ramp)
        verdict = "skill" if ramp >= 1 else "partial skill" if ramp > 0 else "no skill"
        return done(f"{verdict}: corr(score, outcome) {r:+.3f}, t = {t:.2f} over {n} items; scale {ramp:.2f}", corr=r, t=t, base_rate=base)

    def deviation(self, scores: Sequence[float | None]) -> list[float]:
        """Per score, ``shrink * (logit P(up | score) - logit P(up | the typical score))`` (0 for None or without skill)."""
        return [0.0 if s is None or self.shrink == 0.0 else self.shrink * (self.intercept + self.slope * float(s) - self.base_logit) for s in scores]

    def save(self, path: Path) -> None:
        state = {"format": FORMAT, "intercept": self.intercept, "slope": self.slope, "base_logit": self.base_logit,
                 "shrink": self.shrink, "report": self.report}
        save_json(path, state)

    def load(self, path: Path) -> JudgementCalibrator:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        if state.get("format") != FORMAT:
            raise DataError(f"{path}: calibrator format {state.get('format')!r}, expected {FORMAT!r}")
        self.intercept, self.slope, self.base_logit = float(state["intercept"]), float(state["slope"]), float(state["base_logit"])
        self.shrink, self.report = float(state["shrink"]), dict(state["report"])
        return self


def _weighted_corr(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    cov = np.average((x - mx) * (y - my), weights=w)
    sx, sy = math.sqrt(np.average((x - mx) ** 2, weights=w)), math.sqrt(np.average((y - my) ** 2, weights=w))
    return float(cov / (sx * sy)) if sx > 0 and sy > 0 else 0.0
