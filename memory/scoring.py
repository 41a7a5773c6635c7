"""Pure retrieval and life-cycle math (FinMem): no I/O, no clock. Works on floats and numpy arrays.

score = recency + importance / 100 + relevance, where
    recency    = exp(-age_days / Q_layer)                       (age from the item's public_at)
    importance = importance_0 * decay_layer ** days_since_set   (points; /100 in the score)
    relevance  = cosine similarity(query, item)
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from numpy.typing import ArrayLike, NDArray

from memory.base import LADDER, Layer
from memory.config import LayerThresholds

SECONDS_PER_DAY = 86_400.0


def epoch_seconds(moment: dt.datetime) -> float:
    """Seconds since the Unix epoch of an aware datetime (naive datetimes are refused)."""
    if moment.tzinfo is None:
        raise ValueError("as_of/public_at must be timezone-aware (got a naive datetime)")
    return moment.timestamp()


def days_between(start_epoch: ArrayLike, end_epoch: ArrayLike) -> NDArray[np.float64]:
    """Elapsed days from ``start`` to ``end`` (epoch seconds), floored at 0 so the future never boosts."""
    return np.maximum((np.asarray(end_epoch, dtype=np.float64) - np.asarray(start_epoch, dtype=np.float64)) / SECONDS_PER_DAY, 0.0)


def recency(age_days: ArrayLike, q_days: float) -> NDArray[np.float64]:
    """exp(-age_days / Q): 1 for fresh items, 1/e after Q days."""
    return np.exp(-np.asarray(age_days, dtype=np.float64) / q_days)


def decayed_importance(importance: ArrayLike, decay: float, days: ArrayLike) -> NDArray[np.float64]:
    """Importance (points) after ``days`` of daily decay by ``decay``."""
    return np.asarray(importance, dtype=np.float64) * np.power(decay, np.asarray(days, dtype=np.float64))


def combined_score(recency_value: ArrayLike, importance_points: ArrayLike, relevance: ArrayLike) -> NDArray[np.float64]:
    """recency + importance/100 + relevance (each part in its own unit range; equal weights as FinMem)."""
    return (
        np.asarray(recency_value, dtype=np.float64)
        + np.asarray(importance_points, dtype=np.float64) / 100.0
        + np.asarray(relevance, dtype=np.float64)
    )


def feedback_importance(importance_points: float, reward: float, scale: float, max_step: float) -> float:
    """New importance after a reward: +/- scale*reward points, the step clipped to max_step, result to [0, 100]."""
    step = float(np.clip(scale * reward, -max_step, max_step))
    return float(np.clip(importance_points + step, 0.0, 100.0))


def target_layer(layer: Layer, importance_points: float, thresholds: LayerThresholds) -> Layer:
    """Layer an item should live in given its importance, moving as many rungs as the thresholds say.

    Hysteresis: promotion needs ``>= promote_*``, demotion needs ``< demote_*`` (lower), so an item
    between the two stays put. Reflection items never move.
    """
    if layer is Layer.REFLECTION:
        return layer
    rung = LADDER.index(layer)
    promote_at = (thresholds.promote_to_intermediate, thresholds.promote_to_deep)
    demote_below = (thresholds.demote_to_shallow, thresholds.demote_to_intermediate)
    while rung < len(LADDER) - 1 and importance_points >= promote_at[rung]:
        rung += 1
    while rung > 0 and importance_points < demote_below[rung - 1]:
        rung -= 1
    return LADDER[rung]


def is_expired(recency_value: ArrayLike, importance_points: ArrayLike, recency_floor: float, importance_floor: float) -> NDArray[np.bool_]:
    """True where both recency and importance have fallen below their floors (the item is deleted)."""
    return (np.asarray(recency_value) < recency_floor) & (np.asarray(importance_points) < importance_floor)
