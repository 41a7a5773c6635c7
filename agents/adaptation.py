"""The reward adapter as the graph sees it: fitted on matured rewards, versioned in the run dir.

Each fit is saved as ``<run_dir>/adapter/v<session>.pt`` and its version kept in the graph state,
so the test period and a resumed run use exactly the weights the run had at that point.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agents.learning.adapter import FitReport, RewardAdapter, TrainingExample
from agents.learning.config import LearningConfig


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
        self.version = -1
        self._lock = threading.Lock()  # parallel analyst nodes share the handle

    def _feat(self) -> Any:
        if self._featurizer is None:
            self._featurizer = self._featurizer_factory()
        return self._featurizer

    def path(self, version: int) -> Path:
        return self.dir / f"v{version:05d}.pt"

    def ensure(self, version: int) -> None:
        """Make the loaded adapter the one saved at ``version`` (-1: none)."""
        with self._lock:
            if version == self.version:
                return
            if version < 0:
                self._adapter, self.version = None, -1
                return
            self._adapter = RewardAdapter.load(self.path(version), self._feat())
            self.version = version

    def fit(self, examples: Sequence[dict[str, Any]], version: int) -> FitReport:
        with self._lock:
            adapter = RewardAdapter(self.config, self._feat())
            report = adapter.fit([TrainingExample(text=self._transform(e["text"]), outcome=e["outcome"]) for e in examples])
            adapter.save(self.path(version))
            self._adapter, self.version = adapter, version
            return report

    def fitted(self) -> bool:
        return self._adapter is not None and self._adapter.report is not None and self._adapter.report.trained

    def predict(self, texts: Sequence[str]) -> list[float | None]:
        """P(up) per text, or None per text while no adapter has been trained."""
        if not texts:
            return []
        if not self.config.enabled or not self.fitted():
            return [None] * len(texts)
        return [float(p) for p in self._adapter.predict_proba([self._transform(text) for text in texts])]

    def base_rate(self) -> float:
        """The adapter's own P(up) without text: the reference its predictions deviate from.

        Magnitude-weighted like its training loss, so a few large down moves pull it below the
        share of up days; use it only to read a prediction's *deviation*, never as a prior.
        """
        if self._adapter is None or self._adapter.report is None:
            return 0.5
        return self._adapter.base_rate
