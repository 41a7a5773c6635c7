"""Configuration of reward-driven adaptation: which hidden states, what is trained, how skill is judged."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_PROMPT_TEMPLATE = "News headline: {text}\nFor the company's stock price, this news is"


class LearningConfig(BaseModel):
    """How ``RewardAdapter`` turns (news text, matured outcome) pairs into P(up) predictions.

    Features are the mean-pooled hidden states of one layer of the local model. With
    ``train_top_blocks = k > 0`` the k transformer blocks that *produce* that layer are
    fine-tuned together with the head (their inputs are cached once per text); with 0 only
    the head is trained on frozen pooled features.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: Literal["embeddings", "hidden_states"] = Field(
        "embeddings",
        description="What the head reads. embeddings: the memory's sentence vectors (all-MiniLM-L6-v2), which cost no extra "
        "forward pass and read tone best here (benchmarks/bench_learning.py); hidden_states: one layer of the local "
        "language model (learning.backend), optionally with its top blocks fine-tuned.",
    )
    enabled: bool = Field(
        True, description="Train and use the adapter. When false, fit() records 'disabled' and predictions are the base rate."
    )
    layer: int = Field(
        -4,
        ge=-30,
        le=30,
        description="Hidden-state layer to pool, as an index into the model's hidden_states tuple "
        "(0 = embeddings, -1 = final normed output). -4 generalised best across paraphrases (FACTS).",
    )
    prompt_template: str | None = Field(
        None,
        min_length=4,
        description="Wrapper around each text before featurising; must contain {text} once. None: '{text}' for embeddings, "
        "DEFAULT_PROMPT_TEMPLATE for hidden states. For hidden states, ending in an unfinished "
        "judgement ('... this news is') makes the last token's state a sentiment read-out: held-out paraphrase "
        "accuracy rose from 0.70 (raw headline, mean pool) to 0.92 in our measurements.",
    )
    pooling: Literal["last", "mean"] = Field(
        "last", description="last: the hidden state of the final prompt token; mean: attention-masked mean over all tokens."
    )
    max_tokens: int = Field(64, ge=4, le=2048, description="Each text (not the wrapper) is truncated to this many tokens before featurising.")
    batch_size: int = Field(16, ge=1, le=512, description="Texts per forward pass when featurising, and examples per optimiser step when fine-tuning blocks.")
    train_top_blocks: int = Field(
        0, ge=0, le=8, description="Transformer blocks below the feature layer that are fine-tuned; 0 = head only (frozen features)."
    )
    head_hidden: int = Field(0, ge=0, le=4096, description="Hidden units of the head MLP; 0 = a logistic (linear) head.")
    lr: float = Field(1e-3, gt=0, le=1.0, description="AdamW learning rate of the head while blocks are fine-tuned (the head's own fit uses L-BFGS).")
    block_lr: float = Field(2e-5, gt=0, le=1e-1, description="AdamW learning rate of the fine-tuned blocks (ignored when train_top_blocks = 0).")
    head_steps: int = Field(
        100, ge=1, le=10_000, description="Maximum full-batch L-BFGS iterations of the head fit (before any block fine-tuning)."
    )
    epochs: int = Field(
        3, ge=1, le=1000, description="Passes over the examples when fine-tuning blocks; the head gets head_steps full-batch warm-up steps first."
    )
    judgement_ridge: float = Field(
        1.0, ge=0, le=1e5, description="L2 penalty on the slope of the judgement calibrator's logistic regression (agents.learning.judgement)."
    )
    judgement_reference: Literal["window", "typical"] = Field(
        "window", description="The call the judgement calibrator reads each item's deviation against (agents.learning.judgement): "
        "'window' = the neutral call found from whole windows (an OLS of the decision's return on the window's summed impact "
        "scores and its item count; used when the summed calls move returns, kept between 0 and the typical call); "
        "'typical' = the mean score of the training items (the previous release).",
    )
    window_sessions: int = Field(
        5, ge=0, le=30, description="Longest window (sessions) of a ticker's news the news window model (agents.learning.window) "
        "may read; it picks the window 1..this by out-of-fold skill. It learns from matured decisions how the summed text "
        "vectors of the news in the window predict the next position's return. 0 = off (the direction agent sums the "
        "reader's per-item evidence with a calendar half-life, the first release's signal).",
    )
    window_judged: bool = Field(
        False, description="Stack the analyst's calls into the news window model: the sum of the impact scores of the items "
        "in its window is one more input column, not penalised, beside their text vectors, so one out-of-fold fit on the "
        "decision's return weighs the two. False: the judgement calibrator's per-item deviations (fitted on each item's "
        "own label) are added to the window model's output with unit weight.",
    )
    window_ridge: float = Field(
        300.0, ge=0, le=1e6, description="L2 penalty of the news window model's ridge regression (on standardised inputs).",
    )
    window_folds: int = Field(5, ge=2, le=50, description="Time-ordered expanding-window folds of the news window model's gate.")
    window_min_rows: int = Field(
        40, ge=10, description="Matured decision rows the news window model needs before it is fitted (before that, the per-item signal).",
    )
    weight_decay: float = Field(
        3000.0,
        ge=0,
        le=1e5,
        description="L2 penalty on the head weights, as 1/C of a logistic regression (loss = mean BCE + "
        "0.5 * weight_decay * |W|^2 / n); the main guard against fitting noise.",
    )
    seed: int = Field(0, ge=0, description="Seed of head initialisation and mini-batch order; equal seeds and data give identical weights. Defaults to the scenario's seed.")
    backend: str | None = Field(
        None,
        description="Name of the local backend (llm.backends) whose model gives the hidden states; None = the news analyst's "
        "backend if local, else the only local backend.",
    )
    min_examples: int = Field(
        40, ge=4, description="Fewer labelled (non-zero outcome) examples than this: no model is trained and predictions are the base rate."
    )
    weight_by_magnitude: bool = Field(
        True, description="Weight each example by |outcome| / median |outcome| (capped), so big moves teach more than flat days."
    )
    weight_cap: float = Field(3.0, ge=1.0, le=100.0, description="Upper bound of the magnitude weight, so one crash cannot dominate the fit.")
    oof_folds: int = Field(
        12,
        ge=2,
        le=40,
        description="Time-ordered validation folds: the examples are cut into oof_folds + 1 consecutive chunks and each "
        "chunk after the first is predicted by a model trained only on the chunks before it.",
    )
    oof_gap: int = Field(
        0, ge=0, description="Examples dropped between each training window and its validation chunk (purges overlapping-horizon leakage)."
    )
    shrink_max: float = Field(
        2.0, ge=0, le=5.0, description="Largest logit scale the calibration may choose (above 1 sharpens an under-confident head)."
    )
    evidence_min: float = Field(
        2.0, ge=0, description="z-score of the out-of-fold log-loss gain below which the model is judged to have no skill (shrink = 0)."
    )
    evidence_full: float = Field(
        2.5, ge=0, description="z-score at and above which the calibrated scale is used in full; linear ramp from evidence_min."
    )
    feature_cache: bool = Field(True, description="Keep computed hidden states in an on-disk SQLite cache (when a cache dir is given).")

    @model_validator(mode="after")
    def _check(self) -> LearningConfig:
        if self.evidence_full < self.evidence_min:
            raise ValueError(
                f"learning.evidence_full ({self.evidence_full}) must be >= learning.evidence_min ({self.evidence_min})"
            )
        if self.features == "embeddings" and self.train_top_blocks:
            raise ValueError("learning.train_top_blocks must be 0 when learning.features = 'embeddings' (only a head is trained)")
        if self.prompt_template is not None and self.prompt_template.count("{text}") != 1:
            raise ValueError("learning.prompt_template must contain the placeholder {text} exactly once")
        return self

    @property
    def template(self) -> str:
        """The wrapper actually applied (``prompt_template`` or the features' default)."""
        if self.prompt_template is not None:
            return self.prompt_template
        return "{text}" if self.features == "embeddings" else DEFAULT_PROMPT_TEMPLATE
