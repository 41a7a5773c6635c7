"""Labelled headline sets for the adaptation tests (no synthetic market needed).

Two disjoint families of phrasings, one used for training and the other only for testing, so a
pass means the model generalised across wording rather than memorised templates. A plain module
with a unique name, not conftest: ``from conftest import`` resolves to whichever conftest pytest
imported first when several test folders run together.
"""

from __future__ import annotations

import numpy as np

COMPANIES = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises", "Soylent",
    "Cyberdyne", "Tyrell", "Wonka", "Vandelay", "Massive Dynamic", "Oscorp", "Pied Piper", "Aperture",
]

TRAIN_PHRASES = {
    1: [
        "{c} beats quarterly estimates",
        "{c} raises full-year guidance",
        "{c} reports record revenue growth",
        "{c} wins major government contract",
        "{c} announces large share buyback",
        "{c} profit surges on strong demand",
        "{c} receives regulatory approval for flagship product",
        "{c} margins expand as costs fall",
    ],
    0: [
        "{c} misses quarterly estimates",
        "{c} cuts full-year guidance",
        "{c} reports steep revenue decline",
        "{c} loses key customer contract",
        "{c} faces fraud investigation",
        "{c} profit plunges on weak demand",
        "{c} recalls flagship product over safety defects",
        "{c} announces mass layoffs amid losses",
    ],
}

TEST_PHRASES = {
    1: [
        "{c} tops Wall Street forecasts",
        "{c} upgraded to buy by Goldman Sachs",
        "{c} shares soar after blowout earnings",
        "{c} lands multibillion-dollar deal",
        "Analysts cheer {c} as sales jump",
        "{c} hikes dividend after stellar quarter",
    ],
    0: [
        "{c} falls short of Wall Street forecasts",
        "{c} downgraded to sell by Goldman Sachs",
        "{c} shares tumble after disappointing earnings",
        "{c} hit with massive lawsuit",
        "Analysts worry as {c} sales slump",
        "{c} suspends dividend after dismal quarter",
    ],
}


def make_headlines(
    phrases: dict[int, list[str]], n: int, seed: int, label_noise: float = 0.0
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """n headlines with true direction (1 up / 0 down) and an outcome whose sign matches it
    except for a ``label_noise`` share of flips; magnitudes vary like real rewards."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, size=n)
    texts = [
        phrases[int(t)][rng.integers(len(phrases[int(t)]))].format(c=COMPANIES[rng.integers(len(COMPANIES))])
        for t in truth
    ]
    sign = np.where(truth == 1, 1.0, -1.0)
    flips = rng.random(n) < label_noise
    sign[flips] *= -1.0
    magnitude = rng.lognormal(mean=0.0, sigma=0.5, size=n)
    return texts, truth, sign * magnitude
