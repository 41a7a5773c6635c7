"""FLAG-Trader's policy network: the local causal LM with frozen base layers, trainable top blocks
and a value head that shares them.

The process-wide local model (``agents.llm.local_model.load_local_model``) is never modified: the
policy keeps *copies* of its top ``k`` decoder blocks and of the final norm, and runs the frozen
embedding and the bottom ``30 - k`` blocks of the shared model under ``torch.no_grad``. The hidden
states at that split do not change while training, so a rollout computes them once per state
(``encode``) and every PPO epoch only runs the ``k`` trainable blocks (``heads``).

Policy head: the model's own (tied, frozen) LM head read at the last prompt position, restricted
to the tokens of the option words. An option's score is its log-likelihood as the assistant's
answer, minus its log-likelihood after a content-free prompt (``calibration``, computed once from
the untrained model, as ``agents.llm.local`` calibrates ``choose``); the action distribution is
the softmax of these calibrated scores. Value head: a small MLP on the mean-pooled, normed
hidden state of the last block.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from env.errors import ConfigError


def left_pad(rows: Sequence[torch.Tensor], pad: float | int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D (tokens) or 2-D (tokens x features) tensors right-aligned; returns (batch, 0/1 mask)."""
    width = max(int(row.shape[0]) for row in rows)
    shape = (len(rows), width, *rows[0].shape[1:])
    batch = torch.full(shape, pad, dtype=rows[0].dtype)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        batch[i, width - row.shape[0]:] = row
        mask[i, width - row.shape[0]:] = 1
    return batch, mask


def attention_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive (batch, 1, L, L) mask: causal, padding keys hidden; a padding query sees only itself
    (so its softmax is defined; its output is never read)."""
    length = mask.shape[1]
    causal = torch.ones((length, length), dtype=torch.bool).tril()
    allowed = causal[None, :, :] & mask.bool()[:, None, :]
    allowed = allowed | torch.eye(length, dtype=torch.bool)[None]
    bias = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return bias[:, None, :, :]


class FlagPolicy(nn.Module):
    """Actor-critic over a frozen causal LM (see the module docstring).

    ``base``: a transformers Llama-style causal LM (``model.embed_tokens``, ``model.layers``,
    ``model.norm``, ``model.rotary_emb``, ``lm_head``), left untouched. ``option_ids``: one token
    id per action. ``trainable_blocks``: how many top blocks are copied and trained.
    """

    def __init__(self, base: Any, option_ids: Sequence[int], trainable_blocks: int, value_hidden: int = 64) -> None:
        super().__init__()
        layers = base.model.layers
        if not 1 <= trainable_blocks < len(layers):
            raise ConfigError(
                f"flag_trader.trainable_blocks={trainable_blocks} must be between 1 and {len(layers) - 1} "
                f"(the model has {len(layers)} blocks)"
            )
        # A plain attribute, not a submodule: the shared model is neither trained nor saved with the policy.
        self.__dict__["base"] = base
        self.split = len(layers) - trainable_blocks
        self.blocks = nn.ModuleList(copy.deepcopy(layers[i]) for i in range(self.split, len(layers)))
        self.norm = copy.deepcopy(base.model.norm).requires_grad_(False)
        hidden = int(base.config.hidden_size)
        self.value_head = nn.Sequential(nn.Linear(hidden, value_hidden), nn.Tanh(), nn.Linear(value_hidden, 1))
        nn.init.zeros_(self.value_head[2].weight)
        nn.init.zeros_(self.value_head[2].bias)
        self.register_buffer("option_ids", torch.tensor(list(option_ids), dtype=torch.long))
        self.register_buffer("calibration", torch.zeros(len(option_ids)))
        for param in self.blocks.parameters():
            param.requires_grad_(True)

    def trainable_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The parameters PPO updates, by group: the copied top blocks and the value head."""
        return {"blocks": list(self.blocks.parameters()), "value_head": list(self.value_head.parameters())}

    def _rotary(self, hidden: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.base.model.rotary_emb(hidden, positions)

    @staticmethod
    def _positions(mask: torch.Tensor) -> torch.Tensor:
        return (mask.cumsum(-1) - 1).clamp(min=0)

    def encode(self, prompts: Sequence[Sequence[int]], batch_size: int = 8) -> list[torch.Tensor]:
        """Hidden states after the frozen blocks, one (tokens x hidden) tensor per prompt (no grad)."""
        out: list[torch.Tensor] = []
        base = self.base.model
        with torch.no_grad():
            for begin in range(0, len(prompts), batch_size):
                chunk = [torch.tensor(list(p), dtype=torch.long) for p in prompts[begin : begin + batch_size]]
                ids, mask = left_pad(chunk, pad=0)
                hidden = base.embed_tokens(ids)
                positions = self._positions(mask)
                bias = attention_bias(mask, hidden.dtype)
                rotary = self._rotary(hidden, positions)
                for layer in base.layers[: self.split]:
                    hidden = layer(hidden, attention_mask=bias, position_ids=positions, position_embeddings=rotary)
                for row, prompt in enumerate(chunk):
                    out.append(hidden[row, hidden.shape[1] - len(prompt):].clone())
        return out

    def heads(self, hiddens: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the trainable blocks on ``encode``'s output: (raw option log-likelihoods [B, A], values [B]).

        Differentiable with respect to the trainable blocks and the value head (under grad mode).
        """
        hidden, mask = left_pad(hiddens, pad=0.0)
        positions = self._positions(mask)
        bias = attention_bias(mask, hidden.dtype)
        rotary = self._rotary(hidden, positions)
        for block in self.blocks:
            hidden = block(hidden, attention_mask=bias, position_ids=positions, position_embeddings=rotary)
        normed = self.norm(hidden)
        # The LM head's weight is the shared model's (tied to the embeddings): read it detached so
        # no gradient ever lands on the shared model.
        logits = torch.nn.functional.linear(normed[:, -1, :], self.base.lm_head.weight.detach())
        option_logp = torch.log_softmax(logits.float(), dim=-1)[:, self.option_ids]
        weights = mask.to(normed.dtype)[:, :, None]
        pooled = (normed * weights).sum(1) / weights.sum(1)
        values = self.value_head(pooled).squeeze(-1)
        return option_logp, values

    def action_logits(self, option_logp: torch.Tensor) -> torch.Tensor:
        """Calibrated option scores: the logits of the action distribution."""
        return option_logp - self.calibration

    def calibrate(self, content_free_prompt: Sequence[int]) -> None:
        """Set the calibration offsets to the option log-likelihoods after ``content_free_prompt``."""
        with torch.no_grad():
            option_logp, _ = self.heads(self.encode([content_free_prompt]))
        self.calibration.copy_(option_logp[0])
