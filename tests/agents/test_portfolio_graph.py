"""Two tickers through the graph: one decision per ticker and session, and the portfolio-level
gross-exposure cap holds at every decision."""

from __future__ import annotations

import pytest

from agents.runtime import execute
from agents.trace import read_traces

pytestmark = pytest.mark.slow


def test_two_tickers_share_one_capped_portfolio(tiny):
    config = tiny(**{
        "name": "pair", "data.tickers": ["ACME", "BOLT"], "episode.train_days": 3, "episode.test_days": 2,
        "broker.max_gross_exposure": 0.6, "broker.max_position_fraction": 0.5, "risk.max_position_fraction": 0.5,
    })
    outcome = execute(config, resume=False, progress=False)
    assert outcome.finished
    records = read_traces(outcome.run_dir)
    directions = {(r["day"], r["ticker"]) for r in records if r["node"] == "direction"}
    days = {d for d, _ in directions}
    assert directions == {(d, t) for d in days for t in ("ACME", "BOLT")}
    for day in days:
        risk = [r for r in records if r["node"] == "risk" and r["day"] == day]
        assert len(risk) == 2
        if any(r["target_weight"] > r["prev_weight"] + 1e-12 for r in risk):
            # Whenever the risk agent adds exposure, the portfolio's gross weight ends within the cap
            # (held positions may drift above it with prices; the cap never forces a sale).
            assert sum(abs(r["target_weight"]) for r in risk) <= 0.6 + 1e-9
