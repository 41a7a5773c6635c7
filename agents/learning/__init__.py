"""Reward-driven adaptation of the local model: hidden-state features -> P(up) that knows its skill.

``make_featurizer(local_model, config, cache_dir)`` builds the cached ``HiddenStateFeaturizer``;
``RewardAdapter(config, featurizer).fit(examples)`` learns from matured outcomes and
``predict_proba(texts)`` answers, shrunk to the base rate when out-of-fold skill is absent.

The names are imported on first use: ``agents.config`` reads ``agents.learning.config``, and
importing torch with it cost `run` ~2.6 s before it could report a missing API key.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "FitReport": "agents.learning.adapter",
    "RewardAdapter": "agents.learning.adapter",
    "TrainingExample": "agents.learning.adapter",
    "make_featurizer": "agents.learning.adapter",
    "LearningConfig": "agents.learning.config",
    "HiddenStateFeaturizer": "agents.learning.features",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'agents.learning' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
