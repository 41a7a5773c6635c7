"""Equity and drawdown chart of a backtest, written as a PNG.

Uses matplotlib's object API with the Agg canvas directly: no pyplot, no global backend switch,
no display needed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_equity(
    equity: pd.Series,
    path: str | Path,
    *,
    benchmark: pd.Series | None = None,
    title: str = "Equity",
    label: str = "strategy",
    benchmark_label: str = "buy and hold",
) -> Path:
    """Write a two-panel PNG (equity on top, drawdown below) to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(10, 6), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    curves = [(label, equity)] + ([(benchmark_label, benchmark)] if benchmark is not None else [])
    for name, curve in curves:
        top.plot(curve.index, curve.to_numpy(), label=name, linewidth=1.0)
        drawdown = curve / curve.cummax() - 1.0
        bottom.plot(drawdown.index, drawdown.to_numpy() * 100.0, label=name, linewidth=0.8)
    top.set_title(title)
    top.set_ylabel("equity")
    top.legend(loc="best")
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
