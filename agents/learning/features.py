"""Hidden-state features of the local model, computed once per text and cached on disk.

Two kinds of feature are served:

* ``pooled(texts)``: the attention-masked mean of one layer's hidden states, one vector
  per text. This is what a head-only adapter trains on.
* ``token_states(texts, index)``: the per-token hidden states *entering* a given block,
  unpadded. An adapter that fine-tunes the top k blocks below the feature layer caches
  these once and then runs only those k blocks per training step, instead of the full
  30-block forward (headlines are ~20 tokens, so this is small and far cheaper).

The cache is a SQLite file keyed by sha256 of (model path, kind, layer, max_tokens, text),
so a replayed or resumed run never recomputes a feature. Arrays are stored as raw float32
bytes: a cache hit returns exactly the array that was computed.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from env.errors import ConfigError, DataError
from agents.llm.local_model import cache_kwarg, on_model_thread

CACHE_FILE_NAME = "hidden_states.sqlite"


def _base_model(model: Any) -> Any:
    """The decoder stack under a causal-LM wrapper (skips the large vocabulary head)."""
    return getattr(model, "base_model", model)


def run_blocks(
    base: Any, blocks: Sequence[torch.nn.Module], states: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Run ``blocks`` of a Llama-style decoder over ``states`` (batch, tokens, dim), right-padded.

    Uses the model's own rotary embedding and causal-mask builder, so the output equals the
    corresponding slice of a full forward pass (verified in tests). Raises ``ConfigError``
    when the model does not have the Llama layout (``layers`` + ``rotary_emb``).
    """
    if not hasattr(base, "rotary_emb") or not hasattr(base, "layers"):
        raise ConfigError(
            "learning.train_top_blocks > 0 needs a Llama-style model (layers + rotary_emb); "
            f"{type(base).__name__} is not one: set learning.train_top_blocks = 0"
        )
    from transformers.masking_utils import create_causal_mask

    positions = torch.arange(states.shape[1]).unsqueeze(0)
    mask = create_causal_mask(
        config=base.config,
        inputs_embeds=states,
        attention_mask=attention_mask,
        position_ids=positions,
        **{cache_kwarg(create_causal_mask): None},
    )
    rotary = base.rotary_emb(states, positions)
    hidden = states
    for block in blocks:
        hidden = block(hidden, attention_mask=mask, position_embeddings=rotary, position_ids=positions)
    return hidden


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real (mask = 1) tokens of each row: (batch, tokens, dim) -> (batch, dim)."""
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """``last``: each row's final real token (right padding); ``mean``: the masked mean."""
    if pooling == "mean":
        return masked_mean(hidden, attention_mask)
    last = attention_mask.sum(dim=1).long() - 1
    return hidden[torch.arange(hidden.shape[0]), last]


def pad_states(states: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad per-text (tokens, dim) arrays into a batch tensor and its attention mask."""
    length = max(s.shape[0] for s in states)
    dim = states[0].shape[1]
    batch = torch.zeros(len(states), length, dim, dtype=torch.float32)
    mask = torch.zeros(len(states), length, dtype=torch.long)
    for row, s in enumerate(states):
        batch[row, : s.shape[0]] = torch.tensor(s)  # copies: cached arrays are read-only
        mask[row, : s.shape[0]] = 1
    return batch, mask


class HiddenStateFeaturizer:
    """Mean-pooled (attention-masked) hidden states of ``local_model`` at ``layer``, cached.

    ``local_model`` is an ``agents.llm.local_model.LocalModel`` (``.model``, ``.tokenizer``,
    ``.path``). ``layer`` indexes the model's ``hidden_states`` tuple (0 = embeddings,
    i = output of block i, -1 = the final normed output). ``cache_dir``: where the SQLite
    cache lives; ``None`` keeps features in memory only (for this instance).
    """

    def __init__(
        self,
        local_model: Any,
        layer: int = -4,
        max_tokens: int = 64,
        batch_size: int = 16,
        cache_dir: Path | None = None,
        use_disk_cache: bool = True,
        prompt_template: str = "{text}",
        pooling: str = "mean",
    ) -> None:
        if max_tokens < 1:
            raise ConfigError(f"learning.max_tokens must be >= 1, got {max_tokens}")
        if batch_size < 1:
            raise ConfigError(f"learning.batch_size must be >= 1, got {batch_size}")
        if prompt_template.count("{text}") != 1:
            raise ConfigError("learning.prompt_template must contain the placeholder {text} exactly once")
        if pooling not in ("last", "mean"):
            raise ConfigError(f"learning.pooling must be 'last' or 'mean', got {pooling!r}")
        self.prompt_template = prompt_template
        self.pooling = pooling
        # A LocalModel, or a LocalModelRef whose weights load only on a cache miss (replays never load them).
        self.local_model = local_model
        self.num_blocks: int = int(local_model.num_hidden_layers)
        self.hidden_size: int = int(local_model.hidden_size)
        self.feature_index: int = self.resolve_layer(layer)
        self.layer = layer
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.model_id: str = str(Path(local_model.path).resolve())
        self.hits = 0
        self.misses = 0
        self._memory: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.cache_path: Path | None = None
        if cache_dir is not None and use_disk_cache:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            self.cache_path = Path(cache_dir) / CACHE_FILE_NAME

    @property
    def model(self) -> Any:
        return self.local_model.model

    @property
    def tokenizer(self) -> Any:
        return self.local_model.tokenizer

    @property
    def base(self) -> Any:
        return _base_model(self.model)

    # -- layers -------------------------------------------------------------------------

    def resolve_layer(self, layer: int) -> int:
        """Absolute index into ``hidden_states`` (0..num_blocks) for a possibly negative ``layer``."""
        count = self.num_blocks + 1
        index = layer + count if layer < 0 else layer
        if not 0 <= index < count:
            raise ConfigError(
                f"learning.layer = {layer} is outside this model's hidden states (-{count}..{count - 1})"
            )
        return index

    # -- public features --------------------------------------------------------------------

    @on_model_thread
    def pooled(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), hidden_size) float32: pooled hidden states of the wrapped texts at the feature layer."""
        found = self._fetch([self._key("pooled", self.feature_index, t) for t in texts], texts, "pooled")
        if not texts:
            return np.zeros((0, self.hidden_size), dtype=np.float32)
        return np.stack(found).astype(np.float32, copy=False)

    @on_model_thread
    def token_states(self, texts: Sequence[str], index: int) -> list[np.ndarray]:
        """Per text, the (tokens, hidden_size) float32 hidden states at absolute ``index`` (unpadded)."""
        if not 0 <= index <= self.num_blocks:
            raise ConfigError(f"hidden-state index {index} is outside 0..{self.num_blocks}")
        return self._fetch([self._key("tokens", index, t) for t in texts], texts, ("tokens", index))

    def cache_stats(self) -> dict[str, int]:
        """Hits and misses since construction (a hit is a feature served without a forward pass)."""
        return {"hits": self.hits, "misses": self.misses}

    def close(self) -> None:
        """Close the SQLite connection (the cache file stays for the next run)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- internals --------------------------------------------------------------------------

    def _key(self, kind: str, index: int, text: str) -> str:
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"learning features: every text must be a non-empty string, got {text!r}")
        payload = "\x00".join(
            (self.model_id, kind, self.pooling, self.prompt_template, str(index), str(self.max_tokens), text)
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _connect(self) -> sqlite3.Connection | None:
        if self.cache_path is None:
            return None
        if self._db is None:
            # check_same_thread=False: graph nodes may run in worker threads; self._lock serialises use.
            db = sqlite3.connect(self.cache_path, check_same_thread=False, timeout=30.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS features (key TEXT PRIMARY KEY, rows INTEGER, dim INTEGER, data BLOB)"
            )
            db.commit()
            self._db = db
        return self._db

    def _fetch(self, keys: list[str], texts: Sequence[str], kind: Any) -> list[np.ndarray]:
        with self._lock:
            result: dict[str, np.ndarray] = {}
            wanted = set(keys)
            for key in wanted:
                if key in self._memory:
                    result[key] = self._memory[key]
            db = self._connect()
            missing = [k for k in wanted if k not in result]
            if db is not None and missing:
                for start in range(0, len(missing), 500):
                    chunk = missing[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(f"SELECT key, rows, dim, data FROM features WHERE key IN ({marks})", chunk)
                    for key, n_rows, dim, blob in rows:
                        array = np.frombuffer(blob, dtype=np.float32).reshape(n_rows, dim)
                        result[key] = array[0] if kind == "pooled" else array
            todo: dict[str, str] = {}
            for key, text in zip(keys, texts):
                if key not in result:
                    todo.setdefault(key, text)
            # A miss is one forward pass per distinct text; repeats in one call count as hits.
            self.misses += len(todo)
            self.hits += len(keys) - len(todo)
            if todo:
                computed = self._compute(list(todo.values()), kind)
                fresh = dict(zip(todo.keys(), computed))
                result.update(fresh)
                if db is not None:
                    db.executemany(
                        "INSERT OR IGNORE INTO features (key, rows, dim, data) VALUES (?, ?, ?, ?)",
                        [
                            (k, int(np.atleast_2d(a).shape[0]), int(a.shape[-1]), np.ascontiguousarray(a).tobytes())
                            for k, a in fresh.items()
                        ],
                    )
                    db.commit()
            if kind == "pooled":
                # Pooled vectors are small; keep them in memory too. Token states can be large.
                for key in wanted:
                    self._memory[key] = result[key]
            return [result[k] for k in keys]

    def wrap(self, texts: Sequence[str]) -> list[str]:
        """Each text truncated to ``max_tokens`` tokens, then placed in the prompt template."""
        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        out = []
        for text, tokens in zip(texts, ids):
            if len(tokens) > self.max_tokens:
                # Truncate the text, never the template's tail: the read-out token must survive.
                text = self.tokenizer.decode(tokens[: self.max_tokens])
            out.append(self.prompt_template.replace("{text}", text))
        return out

    def _compute(self, texts: list[str], kind: Any) -> list[np.ndarray]:
        """Forward ``texts`` in length-sorted batches (less padding); return arrays in input order."""
        texts = self.wrap(texts)
        lengths = [len(ids) for ids in self.tokenizer(texts)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
        out: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            encoded = self.tokenizer(
                [texts[i] for i in rows],
                return_tensors="pt",
                padding=True,
                # Explicit: the shared tokenizer may be set to left padding for generation elsewhere.
                padding_side="right",
            )
            with torch.inference_mode():
                output = self.base(
                    input_ids=encoded["input_ids"],
                    attention_mask=encoded["attention_mask"],
                    output_hidden_states=True,
                    use_cache=False,
                )
            mask = encoded["attention_mask"]
            if kind == "pooled":
                pooled = pool(output.hidden_states[self.feature_index], mask, self.pooling).float().numpy()
                for row, i in enumerate(rows):
                    out[i] = pooled[row].copy()
            else:
                hidden = output.hidden_states[kind[1]].float().numpy()
                counts = mask.sum(dim=1).tolist()
                for row, i in enumerate(rows):
                    out[i] = hidden[row, : counts[row]].copy()
        return [a for a in out if a is not None]


class EmbeddingFeaturizer:
    """Sentence embeddings as the adapter's features: the vectors the layered memory already
    computes for every item (all-MiniLM-L6-v2 by default, cached in ``embeddings.sqlite``), so the
    reader costs no extra forward pass of the language model.

    ``embed`` maps texts to vectors (a ChromaDB embedding function); ``model_id`` names its model,
    so a saved adapter is only reloaded over the embedder it was trained on. Only a head is
    trained on these (``learning.train_top_blocks`` must be 0).
    """

    kind = "embeddings"

    def __init__(self, embed: Any, model_id: str, *, prompt_template: str = "{text}") -> None:
        if prompt_template.count("{text}") != 1:
            raise ConfigError("learning.prompt_template must contain the placeholder {text} exactly once")
        self._embed = embed
        self.model_id = model_id
        self.prompt_template = prompt_template
        self._dim: int | None = None

    @property
    def hidden_size(self) -> int:
        if self._dim is None:
            self._dim = int(self.pooled(["dimension probe"]).shape[1])
        return self._dim

    def pooled(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 embeddings of the texts (in the template when it is not bare)."""
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        wrapped = [self.prompt_template.replace("{text}", t) for t in texts]
        out = np.asarray(self._embed(wrapped), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != len(texts) or not np.isfinite(out).all():
            raise DataError(f"the embedder returned {out.shape} (finite: {bool(np.isfinite(out).all())}) for {len(texts)} texts")
        self._dim = int(out.shape[1])
        return out

    def close(self) -> None:
        """Nothing to release: the embedder belongs to the memory factory."""
