"""The pure FinMem math against hand-computed values."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from memory.base import Layer
from memory.config import LayerThresholds
from memory.scoring import (
    combined_score,
    days_between,
    decayed_importance,
    epoch_seconds,
    feedback_importance,
    is_expired,
    recency,
    target_layer,
)


def test_recency_is_exp_of_minus_age_over_q():
    assert float(recency(3.0, 3.0)) == pytest.approx(0.36787944117)
    assert float(recency(0.0, 90.0)) == 1.0
    assert np.allclose(recency(np.array([1.0, 30.0]), 90.0), [0.98895, 0.71653], atol=1e-5)


def test_importance_decays_per_day():
    # 80 * 0.92^2 = 67.712 ; 60 * 0.988^10 = 53.1318...
    assert float(decayed_importance(80.0, 0.92, 2.0)) == pytest.approx(67.712)
    assert float(decayed_importance(60.0, 0.988, 10.0)) == pytest.approx(60 * 0.988**10)


def test_score_adds_recency_importance_over_100_and_relevance():
    assert float(combined_score(0.5, 60.0, 0.25)) == pytest.approx(1.35)


def test_days_between_never_negative():
    start = epoch_seconds(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    assert float(days_between(start, start + 36 * 3600)) == pytest.approx(1.5)
    assert float(days_between(start + 86400, start)) == 0.0


def test_epoch_seconds_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="timezone-aware"):
        epoch_seconds(dt.datetime(2024, 1, 1))


def test_feedback_step_is_scaled_clipped_and_bounded():
    assert feedback_importance(50.0, 0.02, scale=500.0, max_step=20.0) == pytest.approx(60.0)
    assert feedback_importance(50.0, 1.0, scale=500.0, max_step=20.0) == pytest.approx(70.0)
    assert feedback_importance(95.0, 0.02, scale=500.0, max_step=20.0) == 100.0
    assert feedback_importance(3.0, -0.02, scale=500.0, max_step=20.0) == 0.0


@pytest.mark.parametrize(
    ("layer", "importance", "expected"),
    [
        (Layer.SHALLOW, 59.9, Layer.SHALLOW),
        (Layer.SHALLOW, 60.0, Layer.INTERMEDIATE),
        (Layer.SHALLOW, 85.0, Layer.DEEP),  # cascades two rungs
        (Layer.INTERMEDIATE, 55.0, Layer.INTERMEDIATE),  # inside the hysteresis band
        (Layer.INTERMEDIATE, 49.0, Layer.SHALLOW),
        (Layer.INTERMEDIATE, 80.0, Layer.DEEP),
        (Layer.DEEP, 75.0, Layer.DEEP),
        (Layer.DEEP, 69.0, Layer.INTERMEDIATE),
        (Layer.DEEP, 10.0, Layer.SHALLOW),
        (Layer.REFLECTION, 0.0, Layer.REFLECTION),
        (Layer.REFLECTION, 100.0, Layer.REFLECTION),
    ],
)
def test_target_layer_uses_hysteresis_thresholds(layer, importance, expected):
    assert target_layer(layer, importance, LayerThresholds()) is expected


def test_expiry_needs_both_floors():
    got = is_expired(np.array([0.01, 0.01, 0.5]), np.array([1.0, 30.0, 1.0]), 0.05, 5.0)
    assert got.tolist() == [True, False, False]
    assert math.isclose(-3 * math.log(0.05), 8.987, rel_tol=1e-3)  # shallow recency floor is hit after ~9 days
