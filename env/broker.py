"""A multi-asset backtest broker: orders in, fills and a ledger out.

Timing. ``submit(orders, index)`` takes orders decided at the close of session ``index``.
With ``fill="next_open"`` (the default) they fill at the open of the next session stepped;
with ``fill="same_close"`` they fill inside ``submit`` at the close of ``index`` (optimistic,
for comparison only). ``step(index)`` fills what is due at that session's open, then marks
the portfolio to market at its close.

Hard limits (``BrokerConfig``) are enforced here, in code: long-only, cash never negative
when long-only, max position as a fraction of equity, max gross exposure, max daily
turnover, whole shares. An order that breaks one is sized down (or rejected when nothing
is left) and the ledger records why. Orders still pending when the data ends are recorded
as ``unfilled``; nothing is dropped silently.

Sizing. Equity "at fill time" is cash plus positions valued at the fill prices of the
session. A ``TargetWeightOrder`` becomes shares at fill time:
``floor(weight * equity * (1 - cash_buffer) - fixed_commission) / (price_exec * (1 + rate))``,
so the whole position, commission included, fits in its share of equity (FACTS: size on
(1 - eps) * equity; cash is compared with a small tolerance).
"""

from __future__ import annotations

import math
from pathlib import Path
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from env.config import BrokerConfig
from env.errors import DataError, OrderError, ResumeError
from env.market import MarketData

STATE_VERSION = 2
# Cash and limit comparisons allow this much (relative to equity) of floating-point slack.
_TOLERANCE = 1e-9

ORDER_COLUMNS = (
    "order_id", "decided_index", "decided_date", "ticker", "kind", "requested",
    "status", "desired_quantity", "filled_quantity", "fill_index", "fill_date", "reason",
)
FILL_COLUMNS = ("date", "index", "order_id", "ticker", "side", "quantity", "price", "commission", "slippage")
DAY_COLUMNS = ("index", "equity", "cash", "gross_exposure", "traded_notional", "borrow_cost")


class MarketOrder(NamedTuple):
    """Trade ``quantity`` shares of ``ticker``: positive buys, negative sells."""

    ticker: str
    quantity: float


class TargetWeightOrder(NamedTuple):
    """Bring ``ticker`` to ``weight`` (signed fraction of equity), sized at fill time."""

    ticker: str
    weight: float


Order = MarketOrder | TargetWeightOrder


class HistoryRows(NamedTuple):
    """A broker's history as plain rows: order records (dicts), fill tuples, day tuples and
    position changes ``(index, ticker, shares)``; columns as ``ORDER_COLUMNS``, ``FILL_COLUMNS``
    and ``DAY_COLUMNS``."""

    orders: list[dict[str, Any]]
    fills: list[tuple]
    days: list[tuple]
    pos_changes: list[tuple]


class PortfolioSnapshot(NamedTuple):
    """The account at the last mark (or fill): cash, shares, equity and signed weights.

    ``weights[t]`` is position value / equity at the marking price (0 when equity <= 0).
    """

    cash: float
    positions: dict[str, float]
    equity: float
    weights: dict[str, float]


class Ledger:
    """Read-only tables of a broker's history, built on demand from its rows.

    ``rows()`` returns ``(orders, fills, days, pos_changes)`` as the broker keeps them; a run that
    keeps its history outside the broker (``agents.journal``) builds the same tables with
    ``Ledger(data, rows)`` over the rows it stored.
    """

    def __init__(self, data: MarketData, rows: Callable[[], HistoryRows]) -> None:
        self._data = data
        self._rows = rows

    @property
    def orders(self) -> pd.DataFrame:
        """One row per submitted order with its status (pending, filled, clipped, rejected, noop, unfilled)."""
        orders = sorted(self._rows().orders, key=lambda r: r["order_id"])
        return pd.DataFrame(orders, columns=list(ORDER_COLUMNS))

    @property
    def fills(self) -> pd.DataFrame:
        """One row per fill: date, index, order_id, ticker, side, quantity (>0), price, commission, slippage."""
        rows = [(self._data.dates[f[0]], *f) for f in self._rows().fills]
        frame = pd.DataFrame(rows, columns=list(FILL_COLUMNS))
        frame["date"] = pd.to_datetime(frame["date"])
        return frame

    @property
    def equity(self) -> pd.DataFrame:
        """One row per stepped session (indexed by date): equity, cash, gross exposure, traded notional, borrow cost."""
        frame = pd.DataFrame(self._rows().days, columns=list(DAY_COLUMNS))
        frame.index = pd.DatetimeIndex(self._data.calendar[frame["index"].to_numpy(dtype=np.int64)], name="date")
        return frame

    @property
    def positions(self) -> pd.DataFrame:
        """Shares held at each stepped session's close, one column per ticker."""
        history = self._rows()
        tickers = list(self._data.tickers)
        days = np.array([d[0] for d in history.days], dtype=np.int64)
        table = np.zeros((len(days), len(tickers)))
        column = {t: k for k, t in enumerate(tickers)}
        current = np.zeros(len(tickers))
        changes = sorted(history.pos_changes, key=lambda c: c[0])
        k = 0
        for row, index in enumerate(days):
            while k < len(changes) and changes[k][0] <= index:
                current[column[changes[k][1]]] = changes[k][2]
                k += 1
            table[row] = current
        dates = pd.DatetimeIndex(self._data.calendar[days], name="date")
        return pd.DataFrame(table, index=dates, columns=tickers)

    def to_csv(self, directory: str | Path) -> dict[str, Path]:
        """Write orders.csv, fills.csv, equity.csv and positions.csv into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / f"{name}.csv" for name in ("orders", "fills", "equity", "positions")}
        self.orders.to_csv(paths["orders"], index=False)
        self.fills.to_csv(paths["fills"], index=False)
        self.equity.to_csv(paths["equity"])
        self.positions.to_csv(paths["positions"])
        return paths


class Broker:
    """Simulated execution over one ``MarketData``. See the module docstring for timing and limits."""

    def __init__(self, data: MarketData, config: BrokerConfig) -> None:
        self._data = data
        self._n = len(data.dates)
        self.config = config
        # Python lists, not numpy: scalar indexing and float arithmetic are several times faster.
        self._open = {t: data.array(t, "open").tolist() for t in data.tickers}
        self._close = {t: data.array(t, "close").tolist() for t in data.tickers}
        self._rate = config.commission_bps / 1e4
        self._slip = config.slippage_bps / 1e4
        self._borrow_daily = config.borrow_bps_annual / 1e4 / 252
        self._same_close = config.fill == "same_close"
        self._cash = float(config.initial_cash)
        self._pos: dict[str, float] = {}
        self._pending: list[tuple[int, int, Order]] = []
        self._last = -1
        self._equity = self._cash
        self._weights: dict[str, float] = {}
        self._traded = 0.0
        self._orders: dict[int, dict[str, Any]] = {}  # by order id, in submission order
        self._next_oid = 0
        self._fills: list[tuple] = []
        self._days: list[tuple] = []
        self._pos_changes: list[tuple[int, str, float]] = []
        self._snap: PortfolioSnapshot | None = None
        self.ledger = Ledger(data, self.history)

    # -- public API ------------------------------------------------------------------------
    @property
    def last_index(self) -> int:
        """The last session stepped (-1 before the first ``step``)."""
        return self._last

    @property
    def pending(self) -> list[tuple[int, Order]]:
        """Orders waiting for their fill: (order_id, order)."""
        return [(oid, order) for oid, _, order in self._pending]

    def portfolio(self) -> PortfolioSnapshot:
        """A snapshot of the account at the last mark (after any same-close fills).

        Snapshots are shared between calls while the account is unchanged: treat them as read-only.
        """
        snap = self._snap
        if snap is None:
            snap = self._snap = PortfolioSnapshot(self._cash, dict(self._pos), self._equity, dict(self._weights))
        return snap

    def history(self) -> HistoryRows:
        """This broker's rows: everything since it was created, or, for one rebuilt from a
        ``state_dict(history=False)``, what changed since then (the orders it touched, its fills,
        the sessions it marked, the last marked session included)."""
        return HistoryRows(list(self._orders.values()), list(self._fills), list(self._days), list(self._pos_changes))

    def step(self, index: int) -> None:
        """Fill orders due at the open of session ``index``, then mark to market at its close.

        Sessions must move forward; skipping sessions is allowed (borrow cost accrues for each).
        """
        last = self._last
        if index <= last or index >= self._n:
            raise DataError(
                f"{self._data.origin}: step(index={index}) must move forward from session {last} "
                f"and stay below {self._n}"
            )
        self._traded = 0.0
        if self._pending:
            batch, self._pending = self._pending, []
            self._fill_batch(batch, index, self._open)
        self._last = index
        if self._pos:
            self._mark(index, index - last if last >= 0 else 1)
        else:
            # Flat account (the common case between trades): equity is cash, nothing to value.
            self._equity = cash = self._cash
            self._weights = {}
            snap = self._snap
            if snap is not None and (snap.cash != cash or snap.positions):
                self._snap = None
            self._days.append((index, cash, cash, 0.0, self._traded, 0.0))

    def submit(self, orders: list[Order] | tuple[Order, ...], index: int) -> list[int]:
        """Queue orders decided at the close of session ``index`` (the session last stepped).

        Returns their order ids. Malformed orders raise ``OrderError`` before any is recorded.
        """
        if index != self._last:
            raise OrderError(
                f"submit(index={index}): orders are decided at the close of the last stepped session "
                f"({self._last}); call step({index}) first"
            )
        for k, order in enumerate(orders):
            self._validate(order, k)
        decided_date = self._data.dates[index].isoformat()
        batch = []
        for order in orders:
            oid = self._next_oid
            self._next_oid += 1
            market = type(order) is MarketOrder
            self._orders[oid] = (
                {
                    "order_id": oid, "decided_index": index, "decided_date": decided_date,
                    "ticker": order.ticker, "kind": "market" if market else "target_weight",
                    "requested": float(order[1]), "status": "pending", "desired_quantity": None,
                    "filled_quantity": 0.0, "fill_index": None, "fill_date": None, "reason": "",
                }
            )
            batch.append((oid, index, order))
        if self._same_close:
            self._fill_batch(batch, index, self._close)
            self._mark(index, sessions=0)
        elif index == self._n - 1:
            self._expire(batch, "end of data: no later session to fill at")
        else:
            self._pending.extend(batch)
        return [oid for oid, _, _ in batch]

    def expire_pending(self, reason: str) -> int:
        """Record every pending order as ``unfilled`` with ``reason`` (e.g. the backtest window ended)."""
        batch, self._pending = self._pending, []
        self._expire(batch, reason)
        return len(batch)

    def state_dict(self, *, history: bool = True) -> dict[str, Any]:
        """A JSON-serialisable snapshot from which ``from_state_dict`` rebuilds this broker exactly.

        ``history=False`` keeps only what the next session needs (cash, positions, pending orders
        and their records, the last marked session): its size does not grow with the run. The
        history itself is then the caller's to keep, from ``history()`` after each change.
        """
        if history:
            orders = [dict(r) for r in self._orders.values()]
            fills, days, changes = [list(f) for f in self._fills], [list(d) for d in self._days], [list(c) for c in self._pos_changes]
        else:
            open_ids = {oid for oid, _, _ in self._pending}
            orders = [dict(r) for oid, r in self._orders.items() if oid in open_ids]
            fills, days, changes = [], [list(d) for d in self._days[-1:]], []
        return {
            "version": STATE_VERSION,
            "history": history,
            "config": self.config.model_dump(mode="json"),
            "origin": self._data.origin,
            "first_date": self._data.dates[0].isoformat(),
            "tickers": list(self._data.tickers),
            "cash": self._cash,
            "positions": dict(self._pos),
            "pending": [[oid, decided, type(o).__name__, o[0], float(o[1])] for oid, decided, o in self._pending],
            "next_order_id": self._next_oid,
            "last_index": self._last,
            "equity": self._equity,
            "weights": dict(self._weights),
            "traded": self._traded,
            "orders": orders,
            "fills": fills,
            "days": days,
            "pos_changes": changes,
        }

    @staticmethod
    def weights_in(state: dict[str, Any]) -> dict[str, float]:
        """Weights at the last mark-to-market of a ``state_dict()``, read without rebuilding the broker."""
        if state.get("version") != STATE_VERSION:
            raise ResumeError(f"broker state version {state.get('version')!r}; this code reads version {STATE_VERSION}")
        return {t: float(w) for t, w in state["weights"].items()}

    @classmethod
    def from_state_dict(cls, data: MarketData, state: dict[str, Any]) -> Broker:
        """Rebuild a broker from ``state_dict()`` over the same dataset (``ResumeError`` if it does not fit)."""
        if state.get("version") != STATE_VERSION:
            raise ResumeError(f"broker state version {state.get('version')!r}; this code reads version {STATE_VERSION}")
        if list(data.tickers) != state["tickers"] or data.dates[0].isoformat() != state["first_date"]:
            raise ResumeError(
                f"broker state was saved over tickers {state['tickers']} from {state['first_date']}; "
                f"the data given has {list(data.tickers)} from {data.dates[0]}"
            )
        if state["last_index"] >= len(data.dates):
            raise ResumeError(
                f"broker state is at session {state['last_index']} but the data has {len(data.dates)} sessions"
            )
        kinds = {"MarketOrder": MarketOrder, "TargetWeightOrder": TargetWeightOrder}
        broker = cls(data, BrokerConfig.model_validate(state["config"]))
        broker._cash = float(state["cash"])
        broker._pos = {t: float(q) for t, q in state["positions"].items()}
        broker._pending = [(oid, decided, kinds[kind](ticker, value)) for oid, decided, kind, ticker, value in state["pending"]]
        broker._last = int(state["last_index"])
        broker._equity = float(state["equity"])
        broker._weights = {t: float(w) for t, w in state["weights"].items()}
        broker._traded = float(state["traded"])
        broker._orders = {int(r["order_id"]): dict(r) for r in state["orders"]}
        broker._next_oid = int(state["next_order_id"])
        broker._fills = [tuple(f) for f in state["fills"]]
        broker._days = [tuple(d) for d in state["days"]]
        broker._pos_changes = [tuple(c) for c in state["pos_changes"]]
        return broker

    # -- internals -------------------------------------------------------------------------
    def _validate(self, order: Any, k: int) -> None:
        if type(order) not in (MarketOrder, TargetWeightOrder):
            raise OrderError(f"order #{k} is a {type(order).__name__}; expected MarketOrder or TargetWeightOrder")
        if order.ticker not in self._open:
            raise OrderError(f"order #{k}: unknown ticker {order.ticker!r}; known tickers: {list(self._data.tickers)}")
        name = "quantity" if type(order) is MarketOrder else "weight"
        value = order[1]
        if not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
            raise OrderError(f"order #{k} ({order.ticker}): {name} must be a finite number, got {value!r}")

    def _expire(self, batch: list[tuple[int, int, Order]], reason: str) -> None:
        for oid, _, _ in batch:
            record = self._orders[oid]
            record["status"] = "unfilled"
            record["reason"] = reason

    def _mark(self, index: int, sessions: int) -> None:
        """Value positions at the close of ``index``; charge borrow on shorts for ``sessions`` sessions."""
        borrow = 0.0
        gross = 0.0
        value = 0.0
        weights: dict[str, float] = {}
        if self._pos:
            close = self._close
            values = {}
            for t, q in self._pos.items():
                v = q * close[t][index]
                values[t] = v
                value += v
                gross += abs(v)
                if v < 0:
                    borrow -= v * self._borrow_daily * sessions
            self._cash -= borrow
            equity = self._cash + value
            for t, v in values.items():
                weights[t] = v / equity if equity > 0 else 0.0
        else:
            equity = self._cash
        self._equity = equity
        self._weights = weights
        self._snap = None
        row = (index, equity, self._cash, gross, self._traded, borrow)
        if sessions == 0:
            self._days[-1] = (index, equity, self._cash, gross, self._traded, self._days[-1][5])
        else:
            self._days.append(row)

    def _fill_batch(self, batch: list[tuple[int, int, Order]], index: int, prices: dict[str, list[float]]) -> None:
        equity = self._cash + sum(q * prices[t][index] for t, q in self._pos.items())

        def reduces(order: Order) -> bool:
            cur = self._pos.get(order.ticker, 0.0)
            if type(order) is MarketOrder:
                return cur * order.quantity < 0 and abs(order.quantity) <= abs(cur)
            return abs(order.weight) * equity < abs(cur) * prices[order.ticker][index] and order.weight * cur >= 0

        # Orders that shrink a position fill first, so their proceeds can fund the purchases.
        batch = sorted(batch, key=lambda item: 0 if reduces(item[2]) else 1)
        for oid, _, order in batch:
            self._execute(oid, order, index, prices, equity)

    def _execute(self, oid: int, order: Order, index: int, prices: dict[str, list[float]], equity: float) -> None:
        cfg = self.config
        record = self._orders[oid]
        ticker = order.ticker
        price = prices[ticker][index]
        cur = self._pos.get(ticker, 0.0)
        reasons: list[str] = []
        tol = _TOLERANCE * max(abs(equity), 1.0)
        rate = self._rate

        if type(order) is MarketOrder:
            q = float(order.quantity)
        else:
            weight = float(order.weight)
            if weight < 0 and not cfg.allow_short:
                reasons.append(f"long-only: target weight {weight:g} raised to 0")
                weight = 0.0
            if weight == 0.0:
                target = 0.0
            else:
                target_value = equity * abs(weight) * (1.0 - cfg.cash_buffer)
                side = 1.0 if math.copysign(target_value, weight) > cur * price else -1.0
                p_exec = price * (1.0 + self._slip * side)
                budget = max(target_value - cfg.commission_fixed, 0.0)
                per_share = p_exec + p_exec * rate
                size = budget // per_share if not cfg.fractional else budget / per_share
                target = math.copysign(size, weight)
            q = target - cur
        record["desired_quantity"] = q
        if q == 0.0:
            record["status"] = "noop" if not reasons else "rejected"
            record["reason"] = "; ".join(reasons or ["already at target"])
            record["fill_index"] = index
            return
        if not cfg.fractional and q != math.trunc(q):
            reasons.append(f"rounded {q:g} to whole shares")
            q = float(math.trunc(q))

        new = cur + q
        if not cfg.allow_short and new < 0:
            reasons.append(f"long-only: sell of {-q:g} cut to the {cur:g} held")
            new = 0.0
        if equity <= 0 and abs(new) > abs(cur):
            reasons.append(f"equity {equity:g} <= 0: no new exposure")
            new = cur
        # Position and gross-exposure caps only stop growth; they never force a sale.
        cap = cfg.max_position_fraction * equity / price
        new = self._cap(cur, new, cap, f"max_position_fraction {cfg.max_position_fraction:g}", reasons)
        other_gross = sum(abs(qq) * prices[t][index] for t, qq in self._pos.items() if t != ticker)
        cap = max(cfg.max_gross_exposure * equity - other_gross, 0.0) / price
        new = self._cap(cur, new, cap, f"max_gross_exposure {cfg.max_gross_exposure:g}", reasons)
        q = new - cur
        if cfg.max_daily_turnover is not None:
            room = max(cfg.max_daily_turnover * equity - self._traded + tol, 0.0) / price
            if abs(q) > room:
                reasons.append(f"max_daily_turnover {cfg.max_daily_turnover:g}: {abs(q):g} shares cut to {room:g}")
                q = math.copysign(room, q)
        side = 1.0 if q > 0 else -1.0
        p_exec = price * (1.0 + self._slip * side)
        if q > 0 and not cfg.allow_short:
            per_share = p_exec + p_exec * rate
            cost = q * per_share + cfg.commission_fixed
            if cost > self._cash + tol:
                affordable = max(self._cash + tol - cfg.commission_fixed, 0.0) / per_share
                reasons.append(f"cash {self._cash:.2f} covers {affordable:g} of {q:g} shares")
                q = affordable
        if not cfg.fractional:
            q = float(math.trunc(q))
        elif abs(q) < 1e-12:
            q = 0.0
        if q == 0.0:
            record["status"] = "rejected"
            record["reason"] = "; ".join(reasons)
            record["fill_index"] = index
            return

        notional = q * p_exec
        commission = abs(notional) * rate + cfg.commission_fixed
        self._cash -= notional + commission
        new = cur + q
        if new == 0.0 or (cfg.fractional and abs(new) < 1e-12):
            self._pos.pop(ticker, None)
            new = 0.0
        else:
            self._pos[ticker] = new
        self._traded += abs(notional)
        self._snap = None
        self._fills.append((index, oid, ticker, "buy" if q > 0 else "sell", abs(q), p_exec, commission, abs(q) * abs(p_exec - price)))
        self._pos_changes.append((index, ticker, new))
        record["status"] = "clipped" if reasons else "filled"
        record["filled_quantity"] = q
        record["fill_index"] = index
        record["fill_date"] = self._data.dates[index].isoformat()
        record["reason"] = "; ".join(reasons)

    def _cap(self, cur: float, new: float, cap: float, label: str, reasons: list[str]) -> float:
        if abs(new) <= cap * (1 + _TOLERANCE) or (new * cur > 0 and abs(new) <= abs(cur)):
            return new
        limit = max(cap, abs(cur)) if new * cur > 0 else cap
        if not self.config.fractional:
            limit = math.floor(limit * (1 + _TOLERANCE))
        clipped = math.copysign(limit, new)
        reasons.append(f"{label}: position {new:g} cut to {clipped:g}")
        return clipped
