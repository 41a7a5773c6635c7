"""Reward-driven adaptation: learn P(up) from (news text, matured outcome) pairs.

In the spirit of FLAG-Trader, a small head (optionally with the top transformer blocks
below the feature layer) is trained on the local model's hidden states, with the sign
of the matured reward as the label and its magnitude as the weight.

How the adapter knows when it has no skill (the rule that keeps noise-news runs from
overtrading):

1. Time-ordered out-of-fold predictions. The examples (in arrival order) are cut into
   ``oof_folds + 1`` consecutive chunks; chunk j is predicted by a model trained only on
   chunks < j (minus ``oof_gap`` examples next to the boundary). The future never
   validates the past.
2. Calibration. Each raw prediction p is moved in logit space toward the base rate b of
   its training window: q = sigmoid(logit b + s * (logit p - logit b)). The scale s in
   [0, shrink_max] minimising the weighted out-of-fold log-loss is ``calibrated_scale``.
3. Evidence. d_i = loss(b_i) - loss(q_i) per validation example (weighted); the evidence
   is the z-score mean(d) / (std(d) / sqrt(m)). ``skill`` is mean(d) in nats.
4. Shrink. shrink = calibrated_scale * clip((z - evidence_min) / (evidence_full -
   evidence_min), 0, 1). With no skill, s = 0 or z < evidence_min, so shrink = 0 and every
   prediction equals the base rate exactly.

The final model is trained on all examples; ``predict_proba`` applies the same logit
shrink toward the overall base rate.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.learning.config import LearningConfig
from agents.learning.features import HiddenStateFeaturizer, pad_states, pool, run_blocks
from env.errors import ConfigError, DataError

_EPS = 1e-6
FORMAT_VERSION = 1


class TrainingExample(BaseModel):
    """One text and the reward that matured for the decision it informed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, description="The news text (headline, or headline + body).")
    outcome: float = Field(
        description="Matured outcome (e.g. multi-timescale momentum); its sign is the label, |outcome| the weight."
    )
    weight: float = Field(1.0, ge=0, description="Extra caller weight, multiplied into the magnitude weight.")

    @field_validator("outcome", "weight")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"must be finite, got {value}")
        return value


class FitReport(BaseModel):
    """What one ``fit`` learned and how much to trust it; JSON-serialisable for traces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_examples: int = Field(ge=0, description="Examples passed to fit.")
    n_labelled: int = Field(ge=0, description="Examples with a non-zero outcome and weight (the ones trained on).")
    base_rate: float = Field(ge=0, le=1, description="Weighted, Laplace-smoothed share of up outcomes.")
    up_share: float = Field(
        0.5, ge=0, le=1,
        description="Unweighted, Laplace-smoothed share of up outcomes: how often the price went up, whatever the size.",
    )
    trained: bool = Field(description="A model was trained (false: every prediction is the base rate).")
    reason: str = Field(description="Why predictions are (or are not) shrunk: the rule that decided.")
    oof_n: int = Field(ge=0, description="Out-of-fold validation examples behind the skill estimate.")
    oof_accuracy: float | None = Field(description="Out-of-fold accuracy of the raw model's direction.")
    oof_base_accuracy: float | None = Field(description="Out-of-fold accuracy of always predicting the majority side.")
    oof_logloss_gain: float = Field(description="Out-of-fold log-loss gain over the base rate at the calibrated scale, nats per example.")
    evidence: float = Field(description="z-score of the out-of-fold log-loss gain.")
    calibrated_scale: float = Field(ge=0, description="Logit scale toward the base rate that minimised out-of-fold log-loss.")
    shrink: float = Field(ge=0, description="Scale actually applied: calibrated_scale times the evidence ramp (0 = base rate).")
    train_seconds: float = Field(ge=0, description="Wall time of fit, featurising included.")
    trainable_params: int = Field(ge=0, description="Parameters trained (head, plus blocks when fine-tuning).")
    train_top_blocks: int = Field(ge=0, description="Blocks fine-tuned (0 = head only).")
    layer: int = Field(description="Hidden-state layer pooled for features.")

    def to_json(self) -> str:
        """The report as a JSON string."""
        return self.model_dump_json()


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _shrunk(p: np.ndarray, base: np.ndarray | float, scale: float) -> np.ndarray:
    return _sigmoid(_logit(base) + scale * (_logit(p) - _logit(base)))


def _logloss(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def _base_rate(y: np.ndarray, w: np.ndarray) -> float:
    """Weighted share of ups, smoothed toward 1/2 by one pseudo-observation each side."""
    total = float(w.sum())
    scale = len(w) / total if total > 0 else 0.0
    # Weights are rescaled to sum to n so the smoothing acts like one example each side.
    return float((float((w * y).sum()) * scale + 1.0) / (len(w) + 2.0))


class _Head(torch.nn.Module):
    """Standardise features, then a logistic layer or a one-hidden-layer MLP."""

    def __init__(self, dim: int, hidden: int, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())
        if hidden:
            self.net: torch.nn.Module = torch.nn.Sequential(
                torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 1)
            )
        else:
            self.net = torch.nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std).squeeze(-1)


class _Model(torch.nn.Module):
    """Optional fine-tuned blocks (from cached block inputs) -> masked mean -> head."""

    def __init__(self, base: Any, blocks: list[torch.nn.Module], head: _Head, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling
        self.blocks = torch.nn.ModuleList(blocks)
        self.head = head
        # Not a submodule: the shared model's rotary/mask config is read, never trained or saved.
        self._base = [base]
        self.trainable_params = 0

    def pooled(self, states: list[np.ndarray]) -> torch.Tensor:
        batch, mask = pad_states(states)
        hidden = run_blocks(self._base[0], list(self.blocks), batch, mask)
        return pool(hidden, mask, self.pooling)


def make_featurizer(local_model: Any, config: LearningConfig, cache_dir: Path | None = None) -> HiddenStateFeaturizer:
    """The featurizer matching ``config`` (layer, prompt, pooling, truncation, cache switch)."""
    return HiddenStateFeaturizer(
        local_model,
        layer=config.layer,
        max_tokens=config.max_tokens,
        batch_size=config.batch_size,
        cache_dir=cache_dir,
        use_disk_cache=config.feature_cache,
        prompt_template=config.template,
        pooling=config.pooling,
    )


class RewardAdapter:
    """Learns P(up | text) from matured rewards and shrinks it toward the base rate without skill.

    ``featurizer`` supplies hidden states (it owns the shared local model and the cache).
    Call ``fit`` with every matured example so far, in time order; it refits from scratch.
    """

    def __init__(self, config: LearningConfig, featurizer: HiddenStateFeaturizer | None) -> None:
        if config.enabled and featurizer is None:
            raise ConfigError("learning.enabled is true but no featurizer was given")
        kind = getattr(featurizer, "kind", "hidden_states")
        if featurizer is not None and kind in ("embeddings", "hidden_states") and kind != config.features:
            raise ConfigError(f"learning.features = {config.features!r} but the featurizer gives {kind!r}")
        if featurizer is not None and kind != "hidden_states" and kind != "judgement" and featurizer.prompt_template != config.template:
            raise ConfigError(f"learning.prompt_template = {config.template!r} but the featurizer uses {featurizer.prompt_template!r}")
        if featurizer is not None and kind == "hidden_states":
            wanted = (featurizer.resolve_layer(config.layer), config.pooling, config.template, config.max_tokens)
            have = (featurizer.feature_index, featurizer.pooling, featurizer.prompt_template, featurizer.max_tokens)
            for name, w_value, h_value in zip(("layer", "pooling", "prompt_template", "max_tokens"), wanted, have):
                if w_value != h_value:
                    raise ConfigError(
                        f"learning.{name} = {w_value!r} but the featurizer uses {h_value!r}; "
                        "build both with make_featurizer(local_model, config)"
                    )
        if featurizer is not None and kind == "hidden_states" and config.train_top_blocks > featurizer.feature_index:
            raise ConfigError(
                f"learning.train_top_blocks = {config.train_top_blocks} reaches below the embeddings "
                f"for layer {config.layer} (at most {featurizer.feature_index})"
            )
        self.config = config
        self.featurizer = featurizer
        self._model: _Model | None = None
        self._base_rate = 0.5
        self._shrink = 0.0
        self._report: FitReport | None = None

    # -- public state ------------------------------------------------------------------------

    @property
    def base_rate(self) -> float:
        """P(up) without looking at the text (0.5 before any fit)."""
        return self._base_rate

    @property
    def skill(self) -> float:
        """Out-of-fold log-loss gain over the base rate, nats per example (0 before a fit)."""
        return self._report.oof_logloss_gain if self._report else 0.0

    @property
    def evidence(self) -> float:
        """z-score of that gain; below ``evidence_min`` the predictions are the base rate."""
        return self._report.evidence if self._report else 0.0

    @property
    def shrink(self) -> float:
        """Logit scale applied to the model's deviation from the base rate (0 = base rate)."""
        return self._shrink

    @property
    def report(self) -> FitReport | None:
        """The last fit's report (or the loaded one)."""
        return self._report

    # -- fit -----------------------------------------------------------------------------------

    def fit(self, examples: Sequence[TrainingExample]) -> FitReport:
        """Refit on ``examples`` (time order: oldest first) and return the report.

        Examples with outcome 0 or weight 0 carry no direction and are not trained on.
        Never raises for too little or one-sided data: predictions fall back to the base
        rate and the report says why.
        """
        started = time.perf_counter()
        cfg = self.config
        examples = [e if isinstance(e, TrainingExample) else TrainingExample.model_validate(e) for e in examples]
        texts = [e.text for e in examples]
        outcomes = np.array([e.outcome for e in examples], dtype=np.float64)
        weights = self._weights(outcomes, np.array([e.weight for e in examples], dtype=np.float64))
        keep = weights > 0
        texts = [t for t, k in zip(texts, keep) if k]
        y = (outcomes[keep] > 0).astype(np.float64)
        w = weights[keep]
        n = len(texts)
        self._base_rate = _base_rate(y, w) if n else 0.5
        self._model = None
        self._shrink = 0.0

        def finish(reason: str, **extra: Any) -> FitReport:
            fields: dict[str, Any] = {
                "oof_n": 0, "oof_accuracy": None, "oof_base_accuracy": None, "oof_logloss_gain": 0.0,
                "evidence": 0.0, "calibrated_scale": 0.0, "trainable_params": 0,
            }
            fields.update(extra)
            self._report = FitReport(
                n_examples=len(examples), n_labelled=n, base_rate=self._base_rate,
                up_share=_base_rate(y, np.ones_like(y)) if n else 0.5,
                trained=self._model is not None, reason=reason, shrink=self._shrink,
                train_seconds=time.perf_counter() - started, train_top_blocks=cfg.train_top_blocks,
                layer=cfg.layer, **fields,
            )
            return self._report

        if not cfg.enabled:
            return finish("disabled (learning.enabled = false): predictions are the base rate")
        if n < cfg.min_examples:
            return finish(f"too few examples: {n} labelled < learning.min_examples = {cfg.min_examples}; base rate")
        if y.min() == y.max():
            return finish(f"all {n} labelled outcomes are {'up' if y[0] else 'down'}: nothing to learn; base rate")

        inputs = self._inputs(texts)
        oof = self._out_of_fold(inputs, y, w)
        model = self._train(inputs, y, w, seed=cfg.seed)
        self._model = model
        params = model.trainable_params
        if oof is None:
            return finish("too few examples for time-ordered validation: skill unknown, base rate", trainable_params=params)
        p_raw, base, yv, wv = oof
        scale, gain, z = self._calibrate(p_raw, base, yv, wv)
        ramp = self._ramp(z)
        self._shrink = scale * ramp
        majority = (base >= 0.5).astype(np.float64)
        if self._shrink == 0.0:
            reason = (
                f"no skill: out-of-fold evidence z = {z:.2f} (< {cfg.evidence_min}) or calibrated scale 0; "
                "predictions are the base rate"
            )
        elif ramp < 1.0:
            reason = f"partial skill: z = {z:.2f} between {cfg.evidence_min} and {cfg.evidence_full}; scale {scale:.2f} x {ramp:.2f}"
        else:
            reason = f"skill: z = {z:.2f} >= {cfg.evidence_full}; calibrated scale {scale:.2f}"
        return finish(
            reason,
            oof_n=len(yv),
            oof_accuracy=float(((p_raw >= 0.5) == (yv == 1)).mean()),
            oof_base_accuracy=float((majority == yv).mean()),
            oof_logloss_gain=gain,
            evidence=z,
            calibrated_scale=scale,
            trainable_params=params,
        )

    # -- predict ---------------------------------------------------------------------------------

    def raw_proba(self, texts: Sequence[str]) -> np.ndarray:
        """The trained model's P(up) before shrinkage (base rate when nothing was trained)."""
        texts = list(texts)
        if self._model is None:
            return np.full(len(texts), self._base_rate)
        if not texts:
            return np.zeros(0)
        return self._forward(self._model, self._inputs(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """P(up) per text, shrunk toward the base rate by ``shrink`` (exactly the base rate when 0)."""
        texts = list(texts)
        if self._model is None or self._shrink == 0.0:
            return np.full(len(texts), self._base_rate)
        return _shrunk(self.raw_proba(texts), self._base_rate, self._shrink)

    # -- persistence ------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write weights, config and report to ``path`` (one torch file, tensors and plain types only)."""
        state: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "config": self.config.model_dump_json(),
            "report": self._report.model_dump_json() if self._report else "",
            "base_rate": self._base_rate,
            "shrink": self._shrink,
            "model_id": self.featurizer.model_id if self.featurizer else "",
            "weights": self._model.state_dict() if self._model is not None else {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, featurizer: HiddenStateFeaturizer | None) -> RewardAdapter:
        """Rebuild a saved adapter; its predictions are bit-identical to the saved one's."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no saved adapter there")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("format") != FORMAT_VERSION:
            raise DataError(f"{path}: adapter format {state.get('format')!r}, expected {FORMAT_VERSION}")
        config = LearningConfig.model_validate(json.loads(state["config"]))
        adapter = cls(config, featurizer)
        adapter._base_rate = float(state["base_rate"])
        adapter._shrink = float(state["shrink"])
        adapter._report = FitReport.model_validate_json(state["report"]) if state["report"] else None
        if state["weights"]:
            if featurizer is None or featurizer.model_id != state["model_id"]:
                raise ConfigError(
                    f"{path}: adapter was trained on the model at {state['model_id']!r}; "
                    f"load it with a featurizer over that model"
                )
            weights = state["weights"]
            dim = featurizer.hidden_size
            model = adapter._build(torch.zeros(dim), torch.ones(dim))
            model.load_state_dict(weights)
            model.eval()
            adapter._model = model
        return adapter

    # -- internals ----------------------------------------------------------------------------------

    def _weights(self, outcomes: np.ndarray, caller: np.ndarray) -> np.ndarray:
        if not self.config.weight_by_magnitude:
            return np.where(outcomes != 0, caller, 0.0)
        magnitude = np.abs(outcomes)
        nonzero = magnitude[magnitude > 0]
        if len(nonzero) == 0:
            return np.zeros_like(outcomes)
        # Median-normalised so the weights are scale-free (momentum in dollars or in returns).
        return caller * np.minimum(magnitude / float(np.median(nonzero)), self.config.weight_cap)

    def _inputs(self, texts: list[str]) -> Any:
        """Frozen inputs of the trainable part: pooled vectors, or per-token block inputs."""
        assert self.featurizer is not None
        k = self.config.train_top_blocks
        if k == 0:
            return self.featurizer.pooled(texts)
        return self.featurizer.token_states(texts, self.featurizer.feature_index - k)

    def _build(self, mean: torch.Tensor, std: torch.Tensor) -> _Model:
        assert self.featurizer is not None
        cfg = self.config
        # Only fine-tuned blocks need the model's weights; a head alone works from cached features.
        base = self.featurizer.base if cfg.train_top_blocks else None
        stop = self.featurizer.feature_index if base is not None else 0
        blocks = [copy.deepcopy(base.layers[i]) for i in range(stop - cfg.train_top_blocks, stop)] if base is not None else []
        for block in blocks:
            block.train(False)
            for p in block.parameters():
                p.requires_grad_(True)
        return _Model(base, blocks, _Head(self.featurizer.hidden_size, cfg.head_hidden, mean, std), cfg.pooling)

    def _pooled(self, model: _Model, inputs: Any, rows: Sequence[int]) -> torch.Tensor:
        if self.config.train_top_blocks == 0:
            return torch.from_numpy(np.ascontiguousarray(inputs[list(rows)]))
        return model.pooled([inputs[i] for i in rows])

    def _forward(self, model: _Model, inputs: Any) -> np.ndarray:
        count = len(inputs)
        out = []
        with torch.inference_mode():
            step = count if self.config.train_top_blocks == 0 else self.config.batch_size
            for start in range(0, count, step):
                rows = range(start, min(start + step, count))
                out.append(torch.sigmoid(model.head(self._pooled(model, inputs, rows))).double().numpy())
        return np.concatenate(out)

    def _train(self, inputs: Any, y: np.ndarray, w: np.ndarray, seed: int) -> _Model:
        """Train a fresh model on ``inputs`` (deterministic for a seed; global RNG untouched)."""
        cfg = self.config
        n = len(y)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # Standardisation stats from the frozen (untrained) pooled features of this training set.
            probe = self._build(torch.zeros(self.featurizer.hidden_size), torch.ones(self.featurizer.hidden_size))
            with torch.inference_mode():
                frozen = torch.cat(
                    [self._pooled(probe, inputs, range(s, min(s + cfg.batch_size, n))) for s in range(0, n, cfg.batch_size)]
                ) if cfg.train_top_blocks else torch.from_numpy(np.ascontiguousarray(inputs))
            frozen = frozen.clone()
            mean, std = frozen.mean(dim=0), frozen.std(dim=0).clamp(min=1e-4)
            torch.manual_seed(seed)
            model = self._build(mean, std)
            target = torch.from_numpy(y).float()
            weight = torch.from_numpy(w / w.mean()).float()
            # Head first: full-batch L-BFGS on the frozen pooled features. For a linear head the
            # problem is convex, so the result is the unique penalised optimum whatever the start,
            # and a few dozen iterations replace thousands of tiny (thread-bound) Adam steps.
            head_opt = torch.optim.LBFGS(
                model.head.parameters(), lr=1.0, max_iter=cfg.head_steps, history_size=20,
                tolerance_grad=1e-7, tolerance_change=1e-10, line_search_fn="strong_wolfe",
            )

            def closure() -> torch.Tensor:
                head_opt.zero_grad()
                loss = self._loss(model.head(frozen), target, weight, model.head)
                loss.backward()
                return loss

            head_opt.step(closure)
            if cfg.train_top_blocks:
                generator = torch.Generator().manual_seed(seed)
                opt = torch.optim.AdamW(
                    [
                        {"params": list(model.blocks.parameters()), "lr": cfg.block_lr, "weight_decay": 0.0},
                        {"params": list(model.head.parameters()), "lr": cfg.lr, "weight_decay": 0.0},
                    ]
                )
                for _ in range(cfg.epochs):
                    order = torch.randperm(n, generator=generator).tolist()
                    for start in range(0, n, cfg.batch_size):
                        rows = order[start : start + cfg.batch_size]
                        opt.zero_grad()
                        logits = model.head(self._pooled(model, inputs, rows))
                        loss = self._loss(logits, target[rows], weight[rows], model.head)
                        loss.backward()
                        opt.step()
            model.eval()
            model.trainable_params = sum(p.numel() for p in model.parameters())
            for p in model.parameters():
                p.requires_grad_(False)
        return model

    def _loss(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, head: _Head) -> torch.Tensor:
        # L2 on the head's weight matrices (not biases), scaled like 1/C in sklearn: the prior
        # matters less as examples accumulate. It is the main guard against fitting noise.
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, weight=weight)
        penalty = sum((p**2).sum() for name, p in head.named_parameters() if name.endswith("weight"))
        return bce + 0.5 * self.config.weight_decay * penalty / len(target)

    def _out_of_fold(
        self, inputs: Any, y: np.ndarray, w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        cfg = self.config
        n = len(y)
        chunks = np.array_split(np.arange(n), cfg.oof_folds + 1)
        probs, bases, ys, ws = [], [], [], []
        for fold in range(1, len(chunks)):
            val = chunks[fold]
            end = int(chunks[fold][0]) - cfg.oof_gap
            if end < 2 or len(val) == 0:
                continue
            train = np.arange(end)
            ytr, wtr = y[train], w[train]
            base = _base_rate(ytr, wtr)
            if ytr.min() == ytr.max():
                p = np.full(len(val), base)
            else:
                sub = inputs[train] if cfg.train_top_blocks == 0 else [inputs[i] for i in train]
                model = self._train(sub, ytr, wtr, seed=cfg.seed + fold)
                held = inputs[val] if cfg.train_top_blocks == 0 else [inputs[i] for i in val]
                p = self._forward(model, held)
            probs.append(p)
            bases.append(np.full(len(val), base))
            ys.append(y[val])
            ws.append(w[val])
        if not probs or sum(len(v) for v in ys) < 2:
            return None
        return np.concatenate(probs), np.concatenate(bases), np.concatenate(ys), np.concatenate(ws)

    def _calibrate(self, p: np.ndarray, base: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
        """Best logit scale on a grid, the mean weighted gain there, and its z-score."""
        cfg = self.config
        wn = w / w.mean()
        base_loss = _logloss(base, y) * wn
        best_scale, best_gain = 0.0, np.zeros_like(y)
        for scale in np.linspace(0.0, cfg.shrink_max, 61)[1:]:
            gain = base_loss - _logloss(_shrunk(p, base, float(scale)), y) * wn
            if gain.mean() > best_gain.mean():
                best_scale, best_gain = float(scale), gain
        mean = float(best_gain.mean())
        spread = float(best_gain.std(ddof=1)) if len(best_gain) > 1 else 0.0
        z = mean / (spread / math.sqrt(len(best_gain))) if spread > 0 else 0.0
        return best_scale, mean, z

    def _ramp(self, z: float) -> float:
        cfg = self.config
        if z < cfg.evidence_min:
            return 0.0
        if cfg.evidence_full <= cfg.evidence_min:
            return 1.0
        return float(min(1.0, (z - cfg.evidence_min) / (cfg.evidence_full - cfg.evidence_min)))
