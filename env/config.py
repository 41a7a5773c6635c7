"""Configuration owned by ``env``: where market data comes from, and how the broker executes.

Every model forbids unknown fields and describes every field; ``agents.config.ScenarioConfig``
composes these with the other packages' configs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Config):
    """How orders become fills. Hard limits here are enforced in code, whatever a model asks for."""

    initial_cash: float = Field(100_000.0, gt=0, description="Starting cash in account currency.")
    commission_bps: float = Field(10.0, ge=0, le=1_000, description="Commission per side, in basis points of traded notional.")
    commission_fixed: float = Field(0.0, ge=0, description="Fixed commission per fill, in account currency.")
    slippage_bps: float = Field(0.0, ge=0, le=1_000, description="Adverse price move applied to every fill, in basis points.")
    fill: Literal["next_open", "same_close"] = Field(
        "next_open",
        description="next_open: an order decided at the close of t fills at the open of t+1 (realistic). "
        "same_close: fills at the close of t (optimistic; for comparison only).",
    )
    fractional: bool = Field(False, description="Allow fractional shares; whole shares when false.")
    allow_short: bool = Field(False, description="Allow short positions (long-only when false).")
    borrow_bps_annual: float = Field(0.0, ge=0, description="Annual borrow cost of short positions, in bps of short notional, charged daily.")
    max_position_fraction: float = Field(
        1.0, gt=0, le=1.0, description="Largest absolute position in one ticker, as a fraction of equity at decision time."
    )
    max_gross_exposure: float = Field(
        1.0, gt=0, le=2.0, description="Largest sum of absolute position values, as a fraction of equity."
    )
    max_daily_turnover: float | None = Field(
        None, gt=0, description="Largest traded notional per session as a fraction of equity; None means no limit."
    )
    cash_buffer: float = Field(
        1e-6, ge=0, lt=0.1, description="Fraction of equity kept back when sizing all-in orders, so rounding never breaks the cash limit."
    )
