"""Reference strategies that trade on news, through the same engine and broker as the agents.

- ``NewsOracle``: the evaluation-only upper bound on synthetic data. It is handed the market's
  ground truth (``MarketData.truth``, each item's true tone) at construction; a ``MarketView``
  never carries it, so no agent code path can reach it. At the close of session ``t`` it knows the
  items public by then and their true tones, hence the news drift the generator adds to session
  ``t + 1``: an item that became usable at session ``s`` moves sessions ``s+1 .. s+h`` by
  ``tone / h`` (``h = signal_horizon_days``). Weight 1/n when that drift is positive, else 0.
  With ``tones="sign"`` it knows only each tone's sign (a label's worth of information, not its
  strength): the bound for a reader that gets every label right.
- ``NewsTfidf``: a real NLP reader for any dataset with news. A 1-2-gram TF-IDF and a logistic
  regression (scikit-learn), trained point in time on matured labels only (an item usable at
  ``s`` is labelled by the sign of ``sum_h (close[s+h] - close[s]) / close[s]`` once ``s + max(h) <=
  t``), refit every ``refit_every_days``. Its tone is the predicted ``2 P(up) - 1`` of the items
  whose drift window covers the next session; weight 1/n when their sum is positive, else 0.

Both read prices and text only through the view; both are long-only and equal-weight.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from env.broker import Order, PortfolioSnapshot, TargetWeightOrder
from env.errors import ConfigError
from env.market import GroundTruth, MarketData, MarketView
from env.records import NewsItem

NEWS_STRATEGIES = ("news_oracle", "news_tfidf")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewsOracleParams(_Params):
    horizon_days: int = Field(3, ge=1, le=20, description="Sessions over which an item's drift is spread (the generator's signal_horizon_days).")
    tones: Literal["true", "sign"] = Field(
        "true", description="true: each item's tone as generated (sign x strength); sign: only its sign, the information a "
        "positive / negative / neutral label carries (what the eval's truth-reading analysts pass on).",
    )


class NewsTfidfParams(_Params):
    label_horizons_days: tuple[int, ...] = Field((1, 3), description="Horizons of the momentum label of each item.")
    horizon_days: int = Field(3, ge=1, le=20, description="Sessions after an item over which its predicted tone counts.")
    refit_every_days: int = Field(10, ge=1, description="Refit the reader this often, on the labels matured by then.")
    min_examples: int = Field(30, ge=4, description="No position until this many matured examples (of both signs) exist.")
    max_features: int = Field(20_000, ge=100, description="Vocabulary size of the TF-IDF.")
    c: float = Field(1.0, gt=0, description="Inverse L2 strength of the logistic regression.")
    body_chars: int = Field(200, ge=0, description="Characters of the body read with the headline.")


def _usable_session(closes_utc: list, item: NewsItem) -> int:
    """The first session whose close is at or after the item's publication (when it became usable)."""
    return bisect.bisect_left(closes_utc, item.public_at)


@dataclass
class _Known:
    session: int
    tone: float


class NewsOracle:
    """See the module docstring. ``truth`` is required: the oracle exists only for synthetic data."""

    def __init__(self, truth: GroundTruth | None, params: NewsOracleParams, closes_utc: list) -> None:
        if truth is None or not truth.item_sentiment:
            raise ConfigError("news_oracle needs a synthetic market's ground truth (data.kind: synthetic); real data has none")
        self._tones = dict(truth.item_sentiment)
        if params.tones == "sign":
            self._tones = {k: float(np.sign(v)) for k, v in self._tones.items()}
        self._signal = float(truth.extra.get("signal", 1.0))  # how much tone moves prices; 0 = pure noise
        self.params = params
        self._closes_utc = closes_utc

    def drift(self, view: MarketView, ticker: str) -> float:
        """The known news drift of the session after ``view.index`` (up to the generator's scale)."""
        h, t = self.params.horizon_days, view.index
        total = 0.0
        for item in view.news(ticker):
            s = _usable_session(self._closes_utc, item)
            if t + 1 - h <= s <= t:
                total += self._tones.get(item.id, 0.0) / h
        return self._signal * total

    def on_bar(self, view: MarketView, portfolio: PortfolioSnapshot) -> list[Order]:
        weight = 1.0 / len(view.tickers)
        return [TargetWeightOrder(t, weight if self.drift(view, t) > 0 else 0.0) for t in view.tickers]


class NewsTfidf:
    """See the module docstring."""

    def __init__(self, params: NewsTfidfParams, closes_utc: list) -> None:
        self.params = params
        self._closes_utc = closes_utc
        self._model: Any = None
        self._fitted_at = -(10**9)
        self.fits: list[dict[str, Any]] = []  # (session, examples, positives) of each refit, for reports

    def _text(self, item: NewsItem) -> str:
        return f"{item.headline}. {item.body[: self.params.body_chars]}"

    def training_set(self, view: MarketView) -> tuple[list[str], list[int]]:
        """Texts and up/down labels of every item whose label horizons have matured by ``view.index``."""
        texts, labels = [], []
        hmax = max(self.params.label_horizons_days)
        for ticker in view.tickers:
            closes = view.series(ticker, "close")
            for item in view.news(ticker):
                s = _usable_session(self._closes_utc, item)
                if s + hmax > view.index:
                    continue
                outcome = sum(closes[s + h] - closes[s] for h in self.params.label_horizons_days) / closes[s]
                texts.append(self._text(item))
                labels.append(int(outcome > 0))
        return texts, labels

    def _refit(self, view: MarketView) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        texts, labels = self.training_set(view)
        self._fitted_at = view.index
        if len(texts) < self.params.min_examples or len(set(labels)) < 2:
            self._model = None
            self.fits.append({"index": view.index, "examples": len(texts), "trained": False})
            return
        model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), max_features=self.params.max_features, sublinear_tf=True),
            LogisticRegression(C=self.params.c, max_iter=1000),
        )
        model.fit(texts, labels)
        self._model = model
        self.fits.append({"index": view.index, "examples": len(texts), "positives": int(sum(labels)), "trained": True})

    def tone(self, view: MarketView, ticker: str) -> float:
        """Sum of predicted tones (2 P(up) - 1) of the items whose drift window covers the next session."""
        if self._model is None:
            return 0.0
        h, t = self.params.horizon_days, view.index
        items = [i for i in view.news(ticker) if t + 1 - h <= _usable_session(self._closes_utc, i) <= t]
        if not items:
            return 0.0
        p_up = self._model.predict_proba([self._text(i) for i in items])[:, 1]
        return float(np.sum(2.0 * p_up - 1.0))

    def on_bar(self, view: MarketView, portfolio: PortfolioSnapshot) -> list[Order]:
        if view.index - self._fitted_at >= self.params.refit_every_days or view.index < self._fitted_at:
            self._refit(view)
        weight = 1.0 / len(view.tickers)
        return [TargetWeightOrder(t, weight if self.tone(view, t) > 0 else 0.0) for t in view.tickers]


def make_news_strategy(name: str, data: MarketData, **params: Any) -> NewsOracle | NewsTfidf:
    """``news_oracle`` (synthetic data only: it is handed ``data.truth``) or ``news_tfidf``."""
    try:
        if name == "news_oracle":
            return NewsOracle(data.truth, NewsOracleParams(**params), list(data.closes_utc))
        if name == "news_tfidf":
            return NewsTfidf(NewsTfidfParams(**params), list(data.closes_utc))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ConfigError(f"{name}: bad parameter ({problems})") from exc
    raise ConfigError(f"unknown news strategy {name!r}; choose one of {list(NEWS_STRATEGIES)}")
