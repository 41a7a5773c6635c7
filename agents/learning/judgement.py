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

``deviation(score)`` is ``shrink * slope * (score - neutral)``: the model's log-odds for this call
less its log-odds for a call that says nothing about the price, exactly 0 without skill.

**Where is the neutral call?** Two references are natural, and a window's sum tells them apart:

- the **typical call** (the mean score of the training items): right for an analyst that leans one
  way (SmolLM2's calls average +0.71), wrong when the *world* leans: a perfect reader's mean call is
  the world's share of good news less bad news (-0.10 to +0.23 at the eval's first decisions), so
  every neutral item counted -mean x slope: on seed 100 (mean +0.05), 19 balanced items made a
  window bearish by 1.1 log-odds and kept the truth-reading arm out of six rising sessions;
- the analyst's **own neutral answer** (score 0, P(pos) = P(neg)): right for an unbiased reader,
  wrong for a biased one, whose every item would then count as good news.

``fit_neutral`` decides from whole windows, point in time: over the news window model's matured
decision rows (``agents.learning.window``), an OLS of the position's return (clipped at a few median
moves) on the window's summed scores and its number of scored items, ``r = c + beta * sum(s) +
gamma * n``, puts the neutral call at ``-gamma / beta``, the score whose item moves nothing. It is
used when beta is positive with t >= ``evidence_min`` (else the typical call stays) and is kept
between 0 and the typical call, so it is never further from the fitted one than the typical call
is. The same OLS on the test periods of the previous release's eval runs (after the fact, as a
check) put the neutral call at +0.62 to +0.77 for SmolLM2 (its mean call +0.71) and at -0.09 to
+0.08 for the truth-reading analysts, on all 10 informative seeds.
``learning.judgement_reference: typical`` keeps the typical call.

The first version read against the smoothed base rate: in a run-up with 98 % of labels "up", the
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

from agents.learning.common import clip_moves, evidence_ramp, logistic_1d, save_json
from agents.learning.config import LearningConfig
from env.errors import DataError

FORMAT = "judgement-calibrator/3"
REFERENCES = ("window", "typical")


class JudgementCalibrator:
    """See the module docstring. ``fit`` on every matured (score, outcome) pair so far."""

    def __init__(self, *, evidence_min: float, evidence_full: float, weight_cap: float, min_examples: int, ridge: float = 1.0,
                 reference: str = "window", min_rows: int = 40, clip_moves: float = 3.0) -> None:
        if reference not in REFERENCES:
            raise DataError(f"judgement calibrator: reference {reference!r}, expected one of {REFERENCES}")
        self.evidence_min, self.evidence_full = evidence_min, evidence_full
        self.weight_cap, self.min_examples, self.ridge = weight_cap, min_examples, ridge
        self.reference, self.min_rows, self.clip_moves = reference, min_rows, clip_moves
        self.intercept = 0.0
        self.slope = 0.0
        self.typical = 0.0  # the mean score of the training items
        self.neutral = 0.0  # the score deviations are read against (the typical call until fit_neutral moves it)
        self.shrink = 0.0
        self.report: dict[str, Any] = {"trained": False, "reason": "not fitted", "n_examples": 0, "shrink": 0.0}

    @classmethod
    def from_config(cls, config: LearningConfig) -> JudgementCalibrator:
        return cls(evidence_min=config.evidence_min, evidence_full=config.evidence_full, weight_cap=config.weight_cap,
                   min_examples=config.min_examples, ridge=config.judgement_ridge, reference=config.judgement_reference,
                   min_rows=config.window_min_rows)

    def fit(self, scores: Sequence[float], outcomes: Sequence[float]) -> dict[str, Any]:
        x, o = np.asarray(scores, dtype=float), np.asarray(outcomes, dtype=float)
        if x.shape != o.shape or not (np.isfinite(x).all() and np.isfinite(o).all()):
            raise DataError(f"judgement calibrator: {x.shape} scores and {o.shape} outcomes, all finite required")
        keep = o != 0
        x, o = x[keep], o[keep]
        n = len(x)
        self.intercept = self.slope = self.typical = self.neutral = self.shrink = 0.0

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
        # The reference of the deviations, until fit_neutral finds better: the typical call.
        self.intercept, self.slope = a, b
        self.typical = self.neutral = float(x.mean())
        ramp = 0.0 if b <= 0 else evidence_ramp(t, self.evidence_min, self.evidence_full)
        self.shrink = float(ramp)
        verdict = "skill" if ramp >= 1 else "partial skill" if ramp > 0 else "no skill"
        return done(f"{verdict}: corr(score, outcome) {r:+.3f}, t = {t:.2f} over {n} items; scale {ramp:.2f}", corr=r, t=t,
                    base_rate=base, typical_score=self.typical, neutral_score=self.neutral, reference="typical call")

    def fit_neutral(self, sums: Sequence[float], counts: Sequence[float], returns: Sequence[float]) -> dict[str, Any]:
        """Place the neutral call from whole windows (module docstring): per matured decision row, the
        summed impact scores of its window's items, how many there were, and the return the position
        earned. Call after ``fit``; returns (and adds to the report) what it found."""
        s, k, r = (np.asarray(v, dtype=float) for v in (sums, counts, returns))
        if not (s.shape == k.shape == r.shape and np.isfinite(s).all() and np.isfinite(k).all() and np.isfinite(r).all()):
            raise DataError(f"judgement calibrator: {s.shape} sums, {k.shape} counts and {r.shape} returns, all finite required")
        self.neutral = self.typical
        found: dict[str, Any] = {"rows": int(len(r)), "reference": "typical call"}
        if self.reference == "typical":
            found["reason"] = "learning.judgement_reference is typical"
        elif len(r) < self.min_rows:
            found["reason"] = f"too few fully judged decision rows: {len(r)} < {self.min_rows}"
        elif np.ptp(k) == 0 or np.ptp(s) < 1e-9:
            found["reason"] = "the windows' item counts or score sums do not vary"
        else:
            y = clip_moves(r, self.clip_moves)
            x = np.column_stack([np.ones_like(s), s, k])
            coef, *_ = np.linalg.lstsq(x, y, rcond=None)
            resid = y - x @ coef
            dof = max(len(y) - 3, 1)
            cov = float(resid @ resid) / dof * np.linalg.pinv(x.T @ x)
            beta, gamma = float(coef[1]), float(coef[2])
            t_beta = beta / math.sqrt(cov[1, 1]) if cov[1, 1] > 0 else 0.0
            found.update(beta=beta, gamma=gamma, t_beta=t_beta)
            if beta <= 0 or t_beta < self.evidence_min:
                found["reason"] = f"the windows' summed calls do not move returns (t = {t_beta:.2f} < {self.evidence_min})"
            else:
                raw = -gamma / beta
                low, high = min(0.0, self.typical), max(0.0, self.typical)
                self.neutral = float(min(max(raw, low), high))
                found.update(raw_neutral=raw, reference="window fit",
                             reason=f"neutral call {self.neutral:+.3f} (fit {raw:+.3f}, kept between 0 and the typical call "
                                    f"{self.typical:+.3f}); summed calls t = {t_beta:.2f} over {len(r)} rows")
        found["neutral_score"] = self.neutral
        self.report = {**self.report, "neutral_score": self.neutral, "reference": found["reference"], "neutral_fit": found}
        return found

    def deviation(self, scores: Sequence[float | None]) -> list[float]:
        """Per score, ``shrink * slope * (score - neutral)``: its log-odds less the neutral call's (0 for None or without skill)."""
        return [0.0 if s is None or self.shrink == 0.0 else self.shrink * self.slope * (float(s) - self.neutral) for s in scores]

    def save(self, path: Path) -> None:
        state = {"format": FORMAT, "intercept": self.intercept, "slope": self.slope, "typical": self.typical,
                 "neutral": self.neutral, "shrink": self.shrink, "report": self.report}
        save_json(path, state)

    def load(self, path: Path) -> JudgementCalibrator:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        if state.get("format") != FORMAT:
            raise DataError(f"{path}: calibrator format {state.get('format')!r}, expected {FORMAT!r}")
        self.intercept, self.slope = float(state["intercept"]), float(state["slope"])
        self.typical, self.neutral = float(state["typical"]), float(state["neutral"])
        self.shrink, self.report = float(state["shrink"]), dict(state["report"])
        return self


def _weighted_corr(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    cov = np.average((x - mx) * (y - my), weights=w)
    sx, sy = math.sqrt(np.average((x - mx) ** 2, weights=w)), math.sqrt(np.average((y - my) ** 2, weights=w))
    return float(cov / (sx * sy)) if sx > 0 and sy > 0 else 0.0
