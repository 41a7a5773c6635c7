"""Broker: fill timing, costs, hard limits with recorded reasons, ledger and exact resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from env.broker import Broker, MarketOrder, TargetWeightOrder
from env.config import BrokerConfig
from env.errors import DataError, OrderError, ResumeError
from env.market import MarketData


def make_data(opens: dict[str, list[float]], closes: dict[str, list[float]]) -> MarketData:
    frames = {}
    for ticker, o in opens.items():
        c = closes[ticker]
        index = pd.bdate_range("2024-01-01", periods=len(o))
        frames[ticker] = pd.DataFrame(
            {"open": o, "high": np.maximum(o, c), "low": np.minimum(o, c), "close": c, "volume": 1000.0}, index=index
        )
    return MarketData(frames, origin="test")


def cfg(**kw) -> BrokerConfig:
    base = {"initial_cash": 10_000.0, "commission_bps": 0.0}
    base.update(kw)
    return BrokerConfig(**base)


@pytest.fixture
def one() -> MarketData:
    return make_data({"A": [100, 101, 102, 103, 104]}, {"A": [100.5, 101.5, 102.5, 103.5, 104.5]})


def test_order_decided_at_close_fills_at_next_open(one: MarketData) -> None:
    broker = Broker(one, cfg())
    broker.step(0)
    broker.submit([MarketOrder("A", 10)], 0)
    assert broker.portfolio().positions == {}
    broker.step(1)
    fill = broker.ledger.fills.iloc[0]
    assert fill["price"] == 101 and fill["quantity"] == 10 and fill["side"] == "buy"
    assert fill["date"] == pd.Timestamp(one.dates[1])
    snap = broker.portfolio()
    assert snap.cash == pytest.approx(10_000 - 1010)
    assert snap.equity == pytest.approx(10_000 - 1010 + 10 * 101.5)
    assert snap.weights["A"] == pytest.approx(1015 / snap.equity)


def test_same_close_fills_at_the_decision_close(one: MarketData) -> None:
    broker = Broker(one, cfg(fill="same_close"))
    broker.step(0)
    broker.submit([MarketOrder("A", 10)], 0)
    assert broker.ledger.fills.iloc[0]["price"] == 100.5
    assert broker.portfolio().positions == {"A": 10.0}
    assert broker.ledger.equity["equity"].iloc[-1] == pytest.approx(10_000)


def test_commission_and_slippage_are_adverse_on_both_sides(one: MarketData) -> None:
    broker = Broker(one, cfg(commission_bps=10, commission_fixed=1.0, slippage_bps=20))
    broker.step(0)
    broker.submit([MarketOrder("A", 10)], 0)
    broker.step(1)
    broker.submit([MarketOrder("A", -10)], 1)
    broker.step(2)
    buy, sell = broker.ledger.fills.itertuples()
    assert buy.price == pytest.approx(101 * 1.002) and sell.price == pytest.approx(102 * 0.998)
    assert buy.commission == pytest.approx(10 * 101 * 1.002 * 0.001 + 1.0)
    assert sell.slippage == pytest.approx(10 * 102 * 0.002)
    expected = 10_000 - 10 * buy.price - buy.commission + 10 * sell.price - sell.commission
    assert broker.portfolio().cash == pytest.approx(expected)
    # The account is flat after the sale, yet the session's traded notional is kept.
    assert broker.ledger.equity["traded_notional"].tolist() == pytest.approx([0.0, 10 * buy.price, 10 * sell.price])


def test_whole_shares_by_default_fractional_when_asked(one: MarketData) -> None:
    for fractional, expected in ((False, 2.0), (True, 2.5)):
        broker = Broker(one, cfg(fractional=fractional))
        broker.step(0)
        broker.submit([MarketOrder("A", 2.5)], 0)
        broker.step(1)
        assert broker.portfolio().positions["A"] == expected
        assert ("whole shares" in broker.ledger.orders.iloc[0]["reason"]) is not fractional


def test_cash_limit_sizes_down_and_records_reason(one: MarketData) -> None:
    broker = Broker(one, cfg(commission_bps=10))
    broker.step(0)
    broker.submit([MarketOrder("A", 500)], 0)
    broker.step(1)
    order = broker.ledger.orders.iloc[0]
    assert order["status"] == "clipped" and "cash" in order["reason"]
    assert order["filled_quantity"] == math.floor(10_000 / (101 * 1.001))
    assert broker.portfolio().cash >= 0


def test_long_only_cuts_oversized_sells_and_rejects_shorts(one: MarketData) -> None:
    broker = Broker(one, cfg())
    broker.step(0)
    broker.submit([MarketOrder("A", 5)], 0)
    broker.step(1)
    broker.submit([MarketOrder("A", -8)], 1)
    broker.step(2)
    broker.submit([MarketOrder("A", -1), TargetWeightOrder("A", -0.5)], 2)
    broker.step(3)
    orders = broker.ledger.orders
    assert orders.loc[1, "status"] == "clipped" and orders.loc[1, "filled_quantity"] == -5
    assert "long-only" in orders.loc[1, "reason"]
    assert orders.loc[2, "status"] == "rejected" and "long-only" in orders.loc[2, "reason"]
    assert orders.loc[3, "status"] == "rejected" and "long-only" in orders.loc[3, "reason"]
    assert broker.portfolio().positions == {}


def test_short_positions_pay_daily_borrow(one: MarketData) -> None:
    broker = Broker(one, cfg(allow_short=True, borrow_bps_annual=252.0))
    broker.step(0)
    broker.submit([MarketOrder("A", -10)], 0)
    broker.step(1)
    broker.step(2)
    daily = broker.ledger.equity
    # 252 bps a year is 1 bp a session, charged on the short's value at each close.
    assert daily["borrow_cost"].iloc[1] == pytest.approx(10 * 101.5 * 1e-4)
    assert daily["borrow_cost"].iloc[2] == pytest.approx(10 * 102.5 * 1e-4)
    assert broker.portfolio().cash == pytest.approx(10_000 + 1010 - daily["borrow_cost"].sum())
    assert broker.portfolio().positions == {"A": -10.0}


def test_max_position_fraction_caps_growth(one: MarketData) -> None:
    broker = Broker(one, cfg(max_position_fraction=0.3))
    broker.step(0)
    broker.submit([TargetWeightOrder("A", 1.0)], 0)
    broker.step(1)
    order = broker.ledger.orders.iloc[0]
    assert order["filled_quantity"] == math.floor(0.3 * 10_000 / 101)
    assert "max_position_fraction" in order["reason"]


def test_max_gross_exposure_across_tickers() -> None:
    data = make_data({"A": [10.0] * 3, "B": [20.0] * 3}, {"A": [10.0] * 3, "B": [20.0] * 3})
    broker = Broker(data, cfg(max_gross_exposure=0.8))
    broker.step(0)
    broker.submit([TargetWeightOrder("A", 0.5), TargetWeightOrder("B", 0.5)], 0)
    broker.step(1)
    snap = broker.portfolio()
    gross = snap.positions["A"] * 10 + snap.positions["B"] * 20
    assert gross <= 0.8 * snap.equity + 1e-9
    assert snap.positions["A"] == 499 and snap.positions["B"] == 150
    assert "max_gross_exposure" in broker.ledger.orders.loc[1, "reason"]


def test_max_daily_turnover(one: MarketData) -> None:
    broker = Broker(one, cfg(max_daily_turnover=0.1))
    broker.step(0)
    broker.submit([MarketOrder("A", 50)], 0)
    broker.step(1)
    order = broker.ledger.orders.iloc[0]
    assert order["filled_quantity"] == math.floor(0.1 * 10_000 / 101)
    assert "max_daily_turnover" in order["reason"]
    assert broker.ledger.equity["traded_notional"].iloc[1] <= 1000 + 1e-9


def test_sells_fund_buys_in_the_same_batch() -> None:
    data = make_data({"A": [10.0] * 3, "B": [10.0] * 3}, {"A": [10.0] * 3, "B": [10.0] * 3})
    broker = Broker(data, cfg(initial_cash=1000.0))
    broker.step(0)
    broker.submit([TargetWeightOrder("A", 1.0)], 0)
    broker.step(1)
    assert broker.portfolio().positions == {"A": 99.0}
    # Buy listed first: it only fits because the sale of A is filled before it.
    broker.submit([TargetWeightOrder("B", 0.99), TargetWeightOrder("A", 0.0)], 1)
    broker.step(2)
    assert broker.portfolio().positions == {"B": 98.0}
    assert set(broker.ledger.orders["status"]) == {"filled"}


def test_target_weight_sizing_survives_extreme_magnitudes() -> None:
    data = make_data({"A": [3e9, 3e9, 3e9]}, {"A": [3e9, 3e9, 3e9]})
    broker = Broker(data, cfg(initial_cash=3e15, commission_bps=10))
    broker.step(0)
    broker.submit([TargetWeightOrder("A", 1.0)], 0)
    broker.step(1)
    assert broker.ledger.orders.iloc[0]["status"] == "filled"
    assert broker.portfolio().cash >= 0
    assert broker.portfolio().positions["A"] == math.floor(3e15 * (1 - 1e-6) / (3e9 * 1.001))


def test_pending_orders_at_end_of_data_are_recorded_unfilled(one: MarketData) -> None:
    broker = Broker(one, cfg())
    for i in range(5):
        broker.step(i)
    broker.submit([MarketOrder("A", 1)], 4)
    other = Broker(one, cfg())
    other.step(0)
    other.submit([MarketOrder("A", 1)], 0)
    assert other.expire_pending("window ended") == 1
    for b, reason in ((broker, "end of data"), (other, "window ended")):
        order = b.ledger.orders.iloc[0]
        assert order["status"] == "unfilled" and reason in order["reason"]


def test_bad_orders_and_calls_raise_naming_the_problem(one: MarketData) -> None:
    broker = Broker(one, cfg())
    with pytest.raises(OrderError, match="step"):
        broker.submit([MarketOrder("A", 1)], 0)
    broker.step(0)
    with pytest.raises(OrderError, match="unknown ticker 'Z'"):
        broker.submit([MarketOrder("Z", 1)], 0)
    with pytest.raises(OrderError, match="quantity must be a finite number"):
        broker.submit([MarketOrder("A", float("nan"))], 0)
    with pytest.raises(OrderError, match="weight must be a finite number"):
        broker.submit([TargetWeightOrder("A", float("inf"))], 0)
    with pytest.raises(DataError, match="move forward"):
        broker.step(0)
    assert broker.ledger.orders.empty


def test_ledger_tables_and_csv_export(one: MarketData, tmp_path) -> None:
    broker = Broker(one, cfg())
    broker.step(0)
    broker.submit([MarketOrder("A", 3)], 0)
    for i in range(1, 4):
        broker.step(i)
    positions = broker.ledger.positions
    assert positions["A"].tolist() == [0.0, 3.0, 3.0, 3.0]
    paths = broker.ledger.to_csv(tmp_path)
    fills = pd.read_csv(paths["fills"])
    assert list(fills.columns) == ["date", "index", "order_id", "ticker", "side", "quantity", "price", "commission", "slippage"]
    assert pd.read_csv(paths["equity"])["equity"].iloc[-1] == pytest.approx(10_000 - 303 + 3 * 103.5)


def _drive(broker: Broker, data: MarketData, start: int, stop: int) -> None:
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        broker.step(i)
        weight = float(rng.choice([0.0, 0.5, 1.0]))
        broker.submit([TargetWeightOrder("A", weight), MarketOrder("B", float(rng.integers(-3, 4)))], i)


def test_state_dict_round_trip_resumes_exactly() -> None:
    rng = np.random.default_rng(3)
    n = 60
    prices = {t: 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n))) for t in ("A", "B")}
    data = make_data({t: list(p * 0.999) for t, p in prices.items()}, {t: list(p) for t, p in prices.items()})
    config = cfg(commission_bps=5, allow_short=True, borrow_bps_annual=50, max_gross_exposure=1.5)
    full = Broker(data, config)
    _drive(full, data, 0, 30)
    _drive(full, data, 30, n)
    first = Broker(data, config)
    _drive(first, data, 0, 30)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = Broker.from_state_dict(data, state)
    assert Broker.weights_in(state) == resumed.portfolio().weights and resumed.portfolio().weights
    with pytest.raises(ResumeError, match="version"):
        Broker.weights_in({**state, "version": -1})
    _drive(resumed, data, 30, n)
    pd.testing.assert_frame_equal(resumed.ledger.fills, full.ledger.fills)
    pd.testing.assert_frame_equal(resumed.ledger.equity, full.ledger.equity)
    pd.testing.assert_frame_equal(resumed.ledger.orders, full.ledger.orders)
    assert resumed.portfolio() == full.portfolio()
    other = make_data({"X": [1.0] * 3}, {"X": [1.0] * 3})
    with pytest.raises(ResumeError, match="tickers"):
        Broker.from_state_dict(other, state)


@pytest.mark.parametrize("fill", ["next_open", "same_close"])
def test_a_broker_rebuilt_each_session_without_history_gives_the_same_ledger(fill) -> None:
    """The graph keeps the broker without its history and collects the rows of each session
    itself; the collected rows must make the same ledger as one broker that kept everything, and
    the compact state must not grow with the run."""
    rng = np.random.default_rng(5)
    n = 80
    prices = {t: 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n))) for t in ("A", "B")}
    data = make_data({t: list(p * 0.999) for t, p in prices.items()}, {t: list(p) for t, p in prices.items()})
    config = cfg(commission_bps=5, allow_short=True, borrow_bps_annual=50, max_gross_exposure=1.5, fill=fill)
    weights, quantities = rng.choice([0.0, 0.5, 1.0], n), rng.integers(-3, 4, n)

    def session(broker: Broker, i: int) -> None:
        broker.step(i)
        broker.submit([TargetWeightOrder("A", float(weights[i])), MarketOrder("B", float(quantities[i]))], i)

    full = Broker(data, config)
    for i in range(n):
        session(full, i)
    orders: dict[int, dict] = {}
    fills, days, changes = {}, {}, {}
    state = Broker(data, config).state_dict(history=False)
    sizes = []
    for i in range(n):
        broker = Broker.from_state_dict(data, json.loads(json.dumps(state)))
        session(broker, i)
        rows = broker.history()
        orders.update({r["order_id"]: r for r in rows.orders})  # rows are keyed: rewriting them is harmless
        fills.update({f[1]: f for f in rows.fills})
        days.update({d[0]: d for d in rows.days})
        changes.update({(c[0], c[1]): c for c in rows.pos_changes})
        state = broker.state_dict(history=False)
        sizes.append(len(json.dumps(state)))
    from env.broker import HistoryRows, Ledger

    collected = HistoryRows(list(orders.values()), list(fills.values()), [days[k] for k in sorted(days)], list(changes.values()))
    ledger = Ledger(data, lambda: collected)
    pd.testing.assert_frame_equal(ledger.fills, full.ledger.fills)
    pd.testing.assert_frame_equal(ledger.equity, full.ledger.equity)
    pd.testing.assert_frame_equal(ledger.orders, full.ledger.orders)
    pd.testing.assert_frame_equal(ledger.positions, full.ledger.positions)
    assert max(sizes[-20:]) <= 1.2 * max(sizes[:20])
