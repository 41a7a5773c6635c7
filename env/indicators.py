"""Technical indicators, one implementation each, shared by the baselines (which update them one
close at a time) and the market analyst (which reads them off a price window).

- ``WilderRsi``: Wilder's RSI. The first average gain/loss is the simple mean of ``period``
  close-to-close changes, then each is smoothed as ``(avg * (period - 1) + x) / period``.
- ``MacdLine``: MACD = EMA(fast) - EMA(slow) of closes with pandas' ``ewm(adjust=False)``
  recursion (started at the first close), its signal line an EMA of MACD; ``update`` returns the
  histogram MACD - signal once ``slow + signal`` closes are in.

The window functions (``rsi``, ``macd_histogram``) run the same streaming classes over a series.
"""

from __future__ import annotations

from collections.abc import Sequence


class WilderRsi:
    """Wilder's RSI of one price series, updated one close at a time."""

    __slots__ = ("period", "_prev", "_changes", "_avg")

    def __init__(self, period: int = 14) -> None:
        if period < 1:
            raise ValueError(f"RSI period must be at least 1, got {period}")
        self.period = period
        self._prev: float | None = None
        self._changes: list[float] = []
        self._avg: tuple[float, float] | None = None

    def update(self, close: float) -> float | None:
        """Add one close; the RSI in [0, 100] once ``period`` changes are in, else None.
        With no losses it is 100 (50 when there were no gains either)."""
        period = self.period
        prev, self._prev = self._prev, close
        if prev is None:
            return None
        change = close - prev
        gain, loss = max(change, 0.0), max(-change, 0.0)
        avg = self._avg
        if avg is None:
            self._changes.append(change)
            if len(self._changes) < period:
                return None
            changes = self._changes
            avg = (sum(max(c, 0.0) for c in changes) / period, sum(max(-c, 0.0) for c in changes) / period)
        else:
            avg = ((avg[0] * (period - 1) + gain) / period, (avg[1] * (period - 1) + loss) / period)
        self._avg = avg
        if avg[1] == 0.0:
            return 100.0 if avg[0] > 0 else 50.0
        return 100.0 - 100.0 / (1.0 + avg[0] / avg[1])


class MacdLine:
    """MACD against its signal line for one price series, updated one close at a time."""

    __slots__ = ("fast", "slow", "signal", "_a_fast", "_a_slow", "_a_sig", "_ema", "_count")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        if not 1 <= fast < slow or signal < 1:
            raise ValueError(f"MACD needs 1 <= fast < slow and signal >= 1, got fast={fast} slow={slow} signal={signal}")
        self.fast, self.slow, self.signal = fast, slow, signal
        self._a_fast, self._a_slow, self._a_sig = 2 / (fast + 1), 2 / (slow + 1), 2 / (signal + 1)
        self._ema: list[float] | None = None  # [EMA fast, EMA slow, signal]
        self._count = 0

    def update(self, close: float) -> float | None:
        """Add one close; MACD - signal once ``slow + signal`` closes are in, else None."""
        ema = self._ema
        if ema is None:
            self._ema = ema = [close, close, 0.0]
        else:
            ema[0] += self._a_fast * (close - ema[0])
            ema[1] += self._a_slow * (close - ema[1])
            ema[2] += self._a_sig * ((ema[0] - ema[1]) - ema[2])
        self._count += 1
        if self._count < self.slow + self.signal:
            return None
        return ema[0] - ema[1] - ema[2]

    @property
    def histogram(self) -> float:
        """MACD - signal at the last close, warmed up or not (0 before the first close)."""
        ema = self._ema
        return 0.0 if ema is None else ema[0] - ema[1] - ema[2]


def rsi(closes: Sequence[float], period: int = 14) -> float | None:
    """Wilder's RSI at the last of ``closes`` (None when fewer than ``period + 1`` closes)."""
    indicator, value = WilderRsi(period), None
    for close in closes:
        value = indicator.update(float(close))
    return value


def macd_histogram(closes: Sequence[float], fast: int = 12, slow: int = 26, signal: int = 9) -> float:
    """MACD - signal at the last of ``closes`` (the recursion's value, warmed up or not)."""
    line = MacdLine(fast, slow, signal)
    for close in closes:
        line.update(float(close))
    return line.histogram
