"""The reward adapter as the graph sees it: fitted on matured rewards, versioned in the run dir.

Two heads learn from the same matured labels, with the same out-of-fold evidence gate:
- the **reader**: P(up | text) from the text's features (``learning.features``);
- the **judgement calibrator** (``agents.learning.judgement``): P(up | the news analyst's impact
  score P(pos) - P(neg)), so a model's zero-shot call counts only as far as it has earned (zero
  for a model that calls every item "positive"; nearly everything for a perfect reader). Its
  examples are joined to the analyst's judgements by item id (the run journal's ``judgements``).

Each fit is saved as ``<run_dir>/adapter/v<session>.pt`` (the calibrator as ``j<session>.json``) and
its version kept in the graph state, so the test period and a resumed run use exactly the weights
the run had at that point.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.learning.adapter import FitReport, RewardAdapter, TrainingExample
from agents.learning.config import LearningConfig
from agents.learning.judgement import JudgementCalibrator
from agents.learning.window import NewsWindowModel


class AdapterHandle:
    """Lazily builds the featurizer (the local model loads only when first needed)."""

    def __init__(
        self, config: LearningConfig, run_dir: Path, featurizer_factory: Callable[[], Any],
        *, transform: Callable[[str], str] | None = None,
    ) -> None:
        """``transform`` rewrites every text before the model reads it (``agents.anonymize.Anonymizer``)."""
        self.config = config
        self._transform = transform or (lambda text: text)
        self.dir = Path(run_dir) / "adapter"
        self._featurizer_factory = featurizer_factory
        self._featurizer: Any = None
        self._adapter: RewardAdapter | None = None
        self._calibrator: JudgementCalibrator | None = None
        self._window: NewsWindowModel | None = None
        self.version = -1
        self._lock = threading.Lock()  # parallel analyst nodes share the handle

    def _feat(self) -> Any:
        if self._featurizer is None:
            self._featurizer = self._featurizer_factory()
        return self._featurizer

    def path(self, version: int) -> Path:
        return self.dir / f"v{version:05d}.pt"

    def calibrator_path(self, version: int) -> Path:
        return self.dir / f"j{version:05d}.json"

    def window_path(self, version: int) -> Path:
        return self.dir / f"w{version:05d}.json"

    def _new_window(self) -> NewsWindowModel:
        c = self.config
        return NewsWindowModel(sessions=c.window_sessions, ridge=c.window_ridge, evidence_min=c.evidence_min,
                               evidence_full=c.evidence_full, folds=c.window_folds, min_rows=c.window_min_rows)

    def _new_calibrator(self) -> JudgementCalibrator:
        return JudgementCalibrator.from_config(self.config)

    def ensure(self, version: int) -> None:
        """Make the loaded adapter the one saved at ``version`` (-1: none)."""
        with self._lock:
            if version == self.version:
                return
            if version < 0:
                self._adapter, self._calibrator, self._window, self.version = None, None, None, -1
                return
            self._adapter = RewardAdapter.load(self.path(version), self._feat())
            jpath, wpath = self.calibrator_path(version), self.window_path(version)
            self._calibrator = self._new_calibrator().load(jpath) if jpath.is_file() else None
            self._window = self._new_window().load(wpath) if wpath.is_file() and self.config.window_sessions else None
            self.version = version

    def fit(
        self, examples: Sequence[dict[str, Any]], version: int, scores: Mapping[str, float] | None = None,
        window: Callable[[], tuple[list[list[tuple[int, int]]], list[float]] | None] | None = None,
    ) -> tuple[FitReport, dict[str, Any] | None, dict[str, Any] | None]:
        """Refit the reader on ``examples`` and, when ``scores`` (item id -> the analyst's impact
        score) covers some of them, the judgement calibrator on those; then, when ``window`` is
        given, the news window model on the rows it returns: per past decision the (position in
        ``examples``, age in sessions) of the items then in the window, and the return that decision
        earned (or None: no rows). Returns the three reports (None for a head not fitted)."""
        with self._lock:
            adapter = RewardAdapter(self.config, self._feat())
            report = adapter.fit([TrainingExample(text=self._transform(e["text"]), outcome=e["outcome"]) for e in examples])
            adapter.save(self.path(version))
            judged = [e for e in examples if scores and e.get("item_id") in scores]
            calibrator, jreport = None, None
            if judged:
                calibrator = self._new_calibrator()
                jreport = calibrator.fit([float(scores[e["item_id"]]) for e in judged], [float(e["outcome"]) for e in judged])
            model, wreport = None, None
            rows = window() if window is not None and self.config.window_sessions else None
            if rows is not None:
                members, returns = rows
                used = sorted({k for row in members for k, _ in row})
                vectors = dict(zip(used, self._feat().pooled([self._transform(examples[k]["text"]) for k in used]) if used else [], strict=True))
                model = self._new_window()
                # learning.window_judged: the analyst's impact score of each item (0 where it judged none) as one more column.
                judged_scores = [
                    np.array([float((scores or {}).get(examples[k].get("item_id", ""), 0.0)) for k, _ in row]) for row in members
                ] if self.config.window_judged else None
                wreport = model.fit(
                    [np.array([age for _, age in row], dtype=int) for row in members],
                    [np.array([vectors[k] for k, _ in row]) if row else np.zeros((0, 0)) for row in members],
                    returns, scores=judged_scores,
                )
                model.save(self.window_path(version))
                if calibrator is not None and model.trained:
                    calibrator.fit_neutral(*_judged_windows(members, returns, examples, scores or {}, model.window))
                    jreport = calibrator.report
            if calibrator is not None:
                calibrator.save(self.calibrator_path(version))
            self._adapter, self._calibrator, self._window, self.version = adapter, calibrator, model, version
            return report, jreport, wreport

    def fitted(self) -> bool:
        return self._adapter is not None and self._adapter.report is not None and self._adapter.report.trained

    def predict(self, texts: Sequence[str]) -> list[float | None]:
        """P(up) per text, or None per text while no adapter has been trained."""
        if not texts:
            return []
        if not self.config.enabled or not self.fitted():
            return [None] * len(texts)
        return [float(p) for p in self._adapter.predict_proba([self._transform(text) for text in texts])]

    def judged_logits(self, scores: Sequence[float | None]) -> list[float]:
        """Per item, the calibrator's log-odds deviation for the analyst's impact score (0 without a
        score, without a calibrator, or while it shows no skill)."""
        if self._calibrator is None:
            return [0.0] * len(scores)
        return self._calibrator.deviation(scores)

    def window_ready(self) -> bool:
        """A news window model is trained (its own gate may still hold its deviation at 0)."""
        return self._window is not None and self._window.trained

    def window_sessions(self) -> int:
        """The window the trained news window model reads (0 without one)."""
        return self._window.window if self.window_ready() else 0

    def window_judged(self) -> bool:
        """The trained news window model reads the analyst's impact scores beside the text (then the
        direction agent must not add the calibrator's evidence on the same items a second time)."""
        return self.window_ready() and self._window.judged

    def window_deviation(self, ages: Sequence[int], texts: Sequence[str], scores: Sequence[float | None] | None = None) -> float | None:
        """The news window model's gated log-odds deviation for one decision's items (ages in
        sessions, texts, and their impact scores when it was fitted with them: None counts as 0),
        or None while no window model is trained."""
        if not self.window_ready():
            return None
        judged = [float(s or 0.0) for s in scores or ()] if self._window.judged else None
        if not texts:
            return self._window.deviation([], np.zeros((0, len(self._window.mu))), [] if judged is not None else None)
        return self._window.deviation(list(ages), self._feat().pooled([self._transform(t) for t in texts]), judged)

    def calibrator_report(self) -> dict[str, Any] | None:
        return self._calibrator.report if self._calibrator is not None else None

    def base_rate(self) -> float:
        """The adapter's own P(up) without text: the reference its predictions deviate from.

        Magnitude-weighted like its training loss, so a few large down moves pull it below the
        share of up days; use it only to read a prediction's *deviation*, never as a prior.
        """
        if self._adapter is None or self._adapter.report is None:
            return 0.5
        return self._adapter.base_rate


def _judged_windows(
    members: Sequence[Sequence[tuple[int, int]]], returns: Sequence[float], examples: Sequence[Mapping[str, Any]],
    scores: Mapping[str, float], window: int,
) -> tuple[list[float], list[float], list[float]]:
    """The rows the calibrator's neutral call is fitted on: per decision row whose items in the last
    ``window`` sessions were all judged, their summed impact scores, their count and the row's return."""
    sums, counts, kept = [], [], []
    for row, ret in zip(members, returns, strict=True):
        ids = [examples[k].get("item_id", "") for k, age in row if age < window]
        if all(i in scores for i in ids):
            sums.append(float(sum(scores[i] for i in ids)))
            counts.append(float(len(ids)))
            kept.append(float(ret))
    return sums, counts, kept
