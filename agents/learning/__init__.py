"""Reward-driven adaptation of the local model: hidden-state features -> P(up) that knows its skill.

``make_featurizer(local_model, config, cache_dir)`` builds the cached ``HiddenStateFeaturizer``;
``RewardAdapter(config, featurizer).fit(examples)`` learns from matured outcomes and
``predict_proba(texts)`` answers, shrunk to the base rate when out-of-fold skill is absent.
"""

from agents.learning.adapter import FitReport, RewardAdapter, TrainingExample, make_featurizer
from agents.learning.config import LearningConfig
from agents.learning.features import HiddenStateFeaturizer

__all__ = [
    "FitReport",
    "HiddenStateFeaturizer",
    "LearningConfig",
    "RewardAdapter",
    "TrainingExample",
    "make_featurizer",
]
