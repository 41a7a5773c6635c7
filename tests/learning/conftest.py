"""Shared fixtures for the adaptation tests: the real local model and its feature cache.

The labelled headline sets live in ``learning_headlines.py``.
"""

from __future__ import annotations

import pytest


def hidden_state_config(**overrides):
    """The hidden-state reader (the first release's defaults), which these checks are about."""
    from agents.learning.config import LearningConfig

    return LearningConfig(**{"features": "hidden_states", "weight_decay": 300.0, "oof_folds": 4, **overrides})



@pytest.fixture(scope="session")
def local_model():
    """The embedded SmolLM2-135M-Instruct, loaded once for all adaptation tests (real model)."""
    from agents.llm.local_model import load_local_model

    return load_local_model()


@pytest.fixture(scope="session")
def feature_cache_dir(tmp_path_factory):
    """One on-disk feature cache shared by the session, so each headline is featurised once."""
    return tmp_path_factory.mktemp("learning-features")


@pytest.fixture(scope="session")
def featurizer(local_model, feature_cache_dir):
    """A featurizer over the real model with the default config, and a session-wide disk cache."""
    from agents.learning.adapter import make_featurizer

    feat = make_featurizer(local_model, hidden_state_config(), cache_dir=feature_cache_dir)
    yield feat
    feat.close()
