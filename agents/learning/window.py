"""The news window model: a reader trained on what a whole window of news does to the next position.

The per-item reader learns from each item's own label, the momentum after it; but that label also
carries the effect of every other item around it, so it is a noisy target. Prices answer to the
*sum* of what is being priced in. This model is trained on that: for a decision at the close of
session ``t``, its input is the sum of the text vectors (the same features the reader uses: the
memory's MiniLM vectors by default) of the ticker's news items usable at sessions ``t - W + 1 .. t``,
and its target is the return of the position that decision set, filled at the next open and held
to the open after: ``open[t + 2] / open[t + 1] - 1``. A ridge regression on standardised inputs
gives a predicted return; a one-variable logistic regression of the sign on the out-of-fold
predictions turns it into log-odds.

How long news takes to be priced in is a property of the market, so the window ``W`` is chosen
from ``1 .. sessions`` by the same out-of-fold test that gates the model: time-ordered
expanding-window folds, the t-statistic of corr(prediction, realised return) with returns clipped
at a few median moves (so one gap cannot decide). The best window's t-statistic is the evidence:
the deviation counts in full at ``evidence_full``, ramps in from ``evidence_min``, and is exactly 0
below it, so noise news leaves the news signal at 0.5. The deviation excludes the intercept (how
often prices rise is the risk agent's business).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.learning.common import clip_moves, evidence_ramp, logistic_1d, save_json
from env.errors import DataError

FORMAT = "tradegraph-news-window-2"


def _ridge(x: np.ndarray, y: np.ndarray, ridge: float, free: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scale, weights) of a ridge regression of centred ``y`` on standardised ``x``. The last
    ``free`` columns are not penalised (one summary column cannot overfit the way hundreds of text
    dimensions can), unless they are constant, which would leave the system singular."""
    mu = x.mean(axis=0)
    raw_sd = x.std(axis=0)
    sd = raw_sd + 1e-9
    z = (x - mu) / sd
    penalty = np.full(z.shape[1], float(ridge))
    if free:
        penalty[-free:] = np.where(raw_sd[-free:] > 1e-9, 0.0, max(float(ridge), 1.0))
    w = np.linalg.solve(z.T @ z + np.diag(penalty), z.T @ (y - y.mean()))
    return mu, sd, w


def window_sum(ages: np.ndarray, vectors: np.ndarray, window: int, dim: int) -> np.ndarray:
    """Sum of the vectors whose age in sessions is in ``0 .. window - 1`` (zeros when none)."""
    ages = np.asarray(ages)
    if len(ages) == 0:
        return np.zeros(dim)
    keep = (ages >= 0) & (ages < window)
    return np.asarray(vectors)[keep].sum(axis=0) if keep.any() else np.zeros(dim)


def _with_scores(vectors: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each item's text vector with its impact score appended as one more column."""
    vectors = np.asarray(vectors, dtype=float)
    scores = np.asarray(scores, dtype=float).reshape(-1, 1)
    if len(vectors) == 0:
        return np.zeros((0, vectors.shape[1] + 1 if vectors.ndim == 2 and vectors.shape[1] else 0))
    return np.hstack([vectors, scores])


class NewsWindowModel:
    """See the module docstring."""

    def __init__(self, *, sessions: int, ridge: float, evidence_min: float, evidence_full: float,
                 folds: int = 5, min_rows: int = 40, clip_moves: float = 3.0) -> None:
        self.sessions, self.ridge, self.clip_moves = sessions, ridge, clip_moves
        self.evidence_min, self.evidence_full = evidence_min, evidence_full
        self.folds, self.min_rows = folds, min_rows
        self.judged = False  # fitted with the analyst's impact scores as one more, unpenalised column
        self.window = 0
        self.mu = self.sd = self.weights = np.zeros(0)
        self.slope = 0.0
        self.shrink = 0.0
        self.report: dict[str, Any] = {"trained": False, "reason": "not fitted", "n_rows": 0, "shrink": 0.0}

    @property
    def trained(self) -> bool:
        return bool(self.report.get("trained"))

    def _oof(self, x: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold predictions and the rows they are for (expanding window, time order)."""
        n = len(r)
        preds, rows = [], []
        for val in np.array_split(np.arange(n), self.folds + 1)[1:]:
            train = np.arange(int(val[0])) if len(val) else np.arange(0)
            if len(val) == 0 or len(train) < 10:
                continue
            mu, sd, w = _ridge(x[train], r[train], self.ridge, free=int(self.judged))
            preds.append(((x[val] - mu) / sd) @ w)
            rows.append(val)
        if not preds:
            return np.zeros(0), np.zeros(0, dtype=int)
        return np.concatenate(preds), np.concatenate(rows)

    def fit(self, ages: Sequence[np.ndarray], vectors: Sequence[np.ndarray], returns: Sequence[float],
            scores: Sequence[np.ndarray] | None = None) -> dict[str, Any]:
        """One row per past decision, in time order: the ages (sessions) and text vectors of the
        ticker's items then in the window, and the return of the position that decision set.

        ``scores`` (optional, per row the analyst's impact score of each of those items) stacks the
        analyst's calls with the text: their sum over the window is one more input column, not
        penalised, so one fit weighs what the text says against what the analyst said on the same
        target, out of fold (``learning.window_judged``)."""
        r = np.asarray(returns, dtype=float)
        n = len(r)
        if len(ages) != n or len(vectors) != n or not np.isfinite(r).all():
            raise DataError(f"news window model: {len(ages)} age lists, {len(vectors)} vector lists and {n} returns; equal lengths, finite returns")
        self.judged = scores is not None
        if scores is not None:
            if len(scores) != n or any(len(s) != len(a) for s, a in zip(scores, ages, strict=True)):
                raise DataError(f"news window model: {len(scores)} score lists for {n} rows; one score per item of each row")
            if not all(np.isfinite(np.asarray(s, dtype=float)).all() for s in scores):
                raise DataError("news window model: impact scores must be finite")
            vectors = [_with_scores(v, s) for v, s in zip(vectors, scores, strict=True)]
        dims = {np.asarray(v).shape[1] for v in vectors if len(v)}
        if len(dims) > 1:
            raise DataError(f"news window model: text vectors of different sizes {sorted(dims)}")
        self.window, self.slope, self.shrink = 0, 0.0, 0.0

        def done(reason: str, trained: bool, **extra: Any) -> dict[str, Any]:
            self.report = {"trained": trained, "reason": reason, "n_rows": int(n), "shrink": self.shrink,
                           "window": self.window, "slope": self.slope, **extra}
            return self.report

        if n < self.min_rows:
            return done(f"too few matured decision rows: {n} < {self.min_rows}", False)
        if not dims:
            return done(f"no news in any of the {n} rows", False)
        dim = dims.pop()
        clipped = clip_moves(r, self.clip_moves)
        best: tuple[float, int, float, np.ndarray, np.ndarray] | None = None
        t_by_window = {}
        for window in range(1, self.sessions + 1):
            x = np.array([window_sum(a, v, window, dim) for a, v in zip(ages, vectors, strict=True)])
            pred, rows = self._oof(x, r)
            if len(pred) < 3 or pred.std() == 0:
                continue
            corr = float(np.corrcoef(pred, clipped[rows])[0, 1])
            t = corr * math.sqrt(max(len(pred) - 2, 1)) / math.sqrt(max(1e-12, 1.0 - corr * corr))
            t_by_window[str(window)] = round(t, 2)
            if best is None or t > best[0]:
                best = (t, window, corr, pred, rows)
        if best is None:
            return done(f"too few rows for time-ordered validation ({n})", False)
        t, window, corr, pred, rows = best
        x = np.array([window_sum(a, v, window, dim) for a, v in zip(ages, vectors, strict=True)])
        self.mu, self.sd, self.weights = _ridge(x, r, self.ridge, free=int(self.judged))
        self.window = window
        # Log-odds per unit of predicted return, from the out-of-fold predictions (honest scale).
        scaled = pred / (pred.std() + 1e-12)
        _, self.slope = logistic_1d(scaled, (r[rows] > 0).astype(float), np.ones_like(scaled), 1.0)
        self.slope /= pred.std() + 1e-12
        ramp = 0.0 if self.slope <= 0 else evidence_ramp(t, self.evidence_min, self.evidence_full)
        self.shrink = float(ramp)
        verdict = "skill" if ramp >= 1 else "partial skill" if ramp > 0 else "no skill"
        return done(
            f"{verdict}: window {window} sessions, out-of-fold corr(prediction, return) {corr:+.3f}, t = {t:.2f} "
            f"on {len(pred)} of {n} rows; scale {ramp:.2f}",
            True, evidence=t, oof_corr=corr, oof_rows=int(len(pred)), t_by_window=t_by_window,
            **({"judged_weight": float(self.weights[-1] / self.sd[-1])} if self.judged else {}),
        )

    def deviation(self, ages: Sequence[int], vectors: np.ndarray, scores: Sequence[float] | None = None) -> float:
        """The gated log-odds deviation for one decision's items (0 without skill). A model fitted
        with scores needs the items' impact scores too (and one fitted without refuses them)."""
        if (scores is not None) != self.judged:
            raise DataError(f"news window model fitted {'with' if self.judged else 'without'} impact scores: "
                            f"deviation() needs {'them' if self.judged else 'none'}")
        if self.shrink == 0.0 or self.window == 0:
            return 0.0
        if scores is not None:
            vectors = _with_scores(np.asarray(vectors), np.asarray(scores, dtype=float))
        x = window_sum(np.asarray(ages), np.asarray(vectors), self.window, len(self.mu))
        return float(self.shrink * self.slope * (((x - self.mu) / self.sd) @ self.weights))

    def save(self, path: Path) -> None:
        state = {"format": FORMAT, "sessions": self.sessions, "window": self.window, "slope": self.slope, "judged": self.judged,
                 "shrink": self.shrink, "mu": self.mu.tolist(), "sd": self.sd.tolist(),
                 "weights": self.weights.tolist(), "report": self.report}
        save_json(path, state)

    def load(self, path: Path) -> NewsWindowModel:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        if state.get("format") != FORMAT or int(state.get("sessions", -1)) != self.sessions:
            raise DataError(f"{path}: news window format {state.get('format')!r} over {state.get('sessions')} sessions, "
                            f"expected {FORMAT!r} over {self.sessions}")
        self.window, self.slope, self.shrink = int(state["window"]), float(state["slope"]), float(state["shrink"])
        self.judged = bool(state.get("judged", False))  # files of earlier releases were fitted on text alone
        self.mu, self.sd = np.asarray(state["mu"], dtype=float), np.asarray(state["sd"], dtype=float)
        self.weights, self.report = np.asarray(state["weights"], dtype=float), dict(state["report"])
        return self
