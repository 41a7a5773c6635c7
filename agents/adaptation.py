"""The reward adapter as the graph sees it: fitted on matured rewards, versioned in the run dir.

Two heads learn from the same matured labels, with the same out-of-fold evidence gate:
- the **reader**: P(up | text) from the text's features (``learning.features``);
- the **judgement calibrator**: P(up | the news analyst's impact score P(pos) - P(neg)), so a
  model's zero-shot call counts only as far as it has earned (zero for a model that calls every
  item "positive"; nearly everything for a perfect reader). Its features are looked up by item id
  in the run journal's ``judgements``.

Each fit is saved as ``<run_dir>/adapter/v<session>.pt`` (the calibrator as ``j<session>.pt``) and
its version kept in the graph state, so the test period and a resumed run use exactly the weights
the run had at that point.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.learning.adapter import FitReport, RewardAdapter, TrainingExample
from agents.learning.config import LearningConfig


class JudgementFeaturizer:
    """The analyst's impact score of each item, keyed by item id: the calibrator's one feature."""

    kind = "judgement"
    model_id = "analyst-impact-score"
    prompt_template = "{text}"
    hidden_size = 1

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}

    def pooled(self, item_ids: Sequence[str]) -> np.ndarray:
        missing = [k for k in item_ids if k not in self.scores]
        if missing:
            raise KeyError(f"no analyst judgement for items {missing[:3]} (of {len(missing)})")
        return np.array([[self.scores[k]] for k in item_ids], dtype=np.float32).reshape(len(item_ids), 1)


def judgement_config(config: LearningConfig) -> LearningConfig:
    """The calibrator's settings: the reader's gate and folds, a light penalty (one feature)."""
    return config.model_copy(update={"weight_decay": config.judgement_weight_decay, "head_hidden": 0, "train_top_blocks": 0})


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
        self._judgements = JudgementFeaturizer()
        self._calibrator: RewardAdapter | None = None
        self.version = -1
        self._lock = threading.Lock()  # parallel analyst nodes share the handle

    def _feat(self) -> Any:
        if self._featurizer is None:
            self._featurizer = self._featurizer_factory()
        return self._featurizer

    def path(self, version: int) -> Path:
        return self.dir / f"v{version:05d}.pt"

    def calibrator_path(self, version: int) -> Path:
        return self.dir / f"j{version:05d}.pt"

    def ensure(self, version: int) -> None:
        """Make the loaded adapter the one saved at ``version`` (-1: none)."""
        with self._lock:
            if version == self.version:
                return
            if version < 0:
                self._adapter, self._calibrator, self.version = None, None, -1
                return
            self._adapter = RewardAdapter.load(self.path(version), self._feat())
            jpath = self.calibrator_path(version)
            self._calibrator = RewardAdapter.load(jpath, self._judgements) if jpath.is_file() else None
            self.version = version

    def fit(
        self, examples: Sequence[dict[str, Any]], version: int, scores: Mapping[str, float] | None = None,
    ) -> tuple[FitReport, FitReport | None]:
        """Refit the reader on ``examples`` and, when ``scores`` (item id -> the analyst's impact
        score) covers some of them, the judgement calibrator on those; returns both reports."""
        with self._lock:
            adapter = RewardAdapter(self.config, self._feat())
            report = adapter.fit([TrainingExample(text=self._transform(e["text"]), outcome=e["outcome"]) for e in examples])
            adapter.save(self.path(version))
            judged = [e for e in examples if scores and e.get("item_id") in scores]
            calibrator, jreport = None, None
            if judged:
                self._judgements.scores.update({e["item_id"]: float(scores[e["item_id"]]) for e in judged})
                calibrator = RewardAdapter(judgement_config(self.config), self._judgements)
                jreport = calibrator.fit([TrainingExample(text=e["item_id"], outcome=e["outcome"]) for e in judged])
                calibrator.save(self.calibrator_path(version))
            self._adapter, self._calibrator, self.version = adapter, calibrator, version
            return report, jreport

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
        """Per item, the calibrator's log-odds deviation from its base rate for the analyst's impact
        score (0 without a score, without a calibrator, or while it shows no skill)."""
        cal = self._calibrator
        if cal is None or cal.shrink == 0.0 or not any(s is not None for s in scores):
            return [0.0] * len(scores)
        keys = [f"score:{s!r}" for s in scores if s is not None]
        self._judgements.scores.update({f"score:{s!r}": float(s) for s in scores if s is not None})
        p = iter(cal.predict_proba(keys))
        base = _logit(cal.base_rate)
        return [0.0 if s is None else _logit(float(next(p))) - base for s in scores]

    def calibrator_report(self) -> FitReport | None:
        return self._calibrator.report if self._calibrator is not None else None

    def base_rate(self) -> float:
        """The adapter's own P(up) without text: the reference its predictions deviate from.

        Magnitude-weighted like its training loss, so a few large down moves pull it below the
        share of up days; use it only to read a prediction's *deviation*, never as a prior.
        """
        if self._adapter is None or self._adapter.report is None:
            return 0.5
        return self._adapter.base_rate


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))
