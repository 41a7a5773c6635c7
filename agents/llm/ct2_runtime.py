"""The CTranslate2 runtime of the embedded backend: the same model's answers, computed faster.

``llm.backends.<name>.runtime: ctranslate2`` makes ``LocalBackend`` score and generate with a
CTranslate2 ``Generator`` instead of torch eager. CTranslate2 is the inference engine of the
field for small transformers on CPU (fused kernels, no Python per layer). Measured here on the
direction agent's 730-token prompts, one thread, under load: float32 runs 2x faster than torch
with the same log-probabilities to 1e-3, int8 3.5-4x faster but quantised: its calibrated
probabilities move by up to ~0.25 on short prompts (``benchmarks/bench_llm.py``).

What stays the same: the tokenizer and chat template (the model folder's own), calibrated
``choose`` (``LocalBackend`` subtracts the content-free scores exactly as on torch), the shared
system prefix computed once and reused (CTranslate2's ``static_prompt`` cache), and the reward
adapter's hidden-state features, which still come from the torch model (``agents.learning.features``)
because CTranslate2 does not expose hidden states.

The converted model lives next to the torch folder it came from,
``<cache root>/<folder>-ct2-<compute type>``; ``tradegraph-ct2.json`` inside records its source
and is written last, so a conversion killed halfway is redone, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from env.errors import ConfigError

from .local_model import DEFAULT_CACHE_ROOT, converted_model_folder

MARKER = "tradegraph-ct2.json"
COMPUTE_TYPES = ("float32", "int8")


def _require_ctranslate2() -> Any:
    try:
        import ctranslate2
    except ImportError as exc:  # pragma: no cover - a dependency of the project; guards a broken install
        raise ConfigError(
            "llm.backends.<name>.runtime: ctranslate2 needs the ctranslate2 package (pip install ctranslate2==4.8.5)"
        ) from exc
    return ctranslate2


def _source_stamp(folder: Path) -> dict[str, Any]:
    """What identifies the torch folder's weights: names, sizes and modification times."""
    files = sorted(p for p in folder.iterdir() if p.suffix in {".safetensors", ".bin", ".json"} and p.is_file())
    return {
        "source": str(folder.resolve()),
        "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files],
    }


def ct2_folder(hf_folder: Path, compute_type: str, cache_dir: Path | None = None) -> Path:
    """Where the CTranslate2 conversion of ``hf_folder`` at ``compute_type`` lives."""
    root = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_ROOT
    tag = hashlib.sha256(str(hf_folder.resolve()).encode()).hexdigest()[:10]
    return root / f"{hf_folder.name}-{tag}-ct2-{compute_type}"


def convert(hf_folder: Path, compute_type: str, cache_dir: Path | None = None) -> Path:
    """The converted model for ``hf_folder``, converting once (atomically) when missing or stale."""
    if compute_type not in COMPUTE_TYPES:
        raise ConfigError(f"llm.backends.<name>.compute_type: {compute_type!r} is not one of {list(COMPUTE_TYPES)}")
    ctranslate2 = _require_ctranslate2()
    target = ct2_folder(hf_folder, compute_type, cache_dir)
    stamp = {**_source_stamp(hf_folder), "compute_type": compute_type, "ctranslate2": ctranslate2.__version__}
    marker = target / MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == stamp:
                return target
        except ValueError:
            pass  # an unreadable marker: convert again
    from ctranslate2.converters import TransformersConverter

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        out = tmp / "model"
        TransformersConverter(str(hf_folder), low_cpu_mem_usage=True).convert(
            str(out), quantization=None if compute_type == "float32" else compute_type, force=True
        )
        (out / MARKER).write_text(json.dumps(stamp), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)  # stale: its source changed
        try:
            os.replace(out, target)
        except OSError:
            # Another process finished the same conversion first: keep theirs if it is complete.
            if not marker.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass(frozen=True)
class Ct2Model:
    """A loaded CTranslate2 generator and the tokenizer of the folder it was converted from."""

    generator: Any
    tokenizer: Any
    path: Path
    compute_type: str
    threads: int


_LOADED: dict[tuple[str, str, int], Ct2Model] = {}
_LOCK = threading.Lock()


def load_ct2_model(
    model_path: str | None, *, compute_type: str, threads: int, cache_dir: Path | None = None
) -> Ct2Model:
    """Load (once per process) the CTranslate2 model of the local backend's model."""
    ctranslate2 = _require_ctranslate2()
    hf_folder = converted_model_folder(model_path, cache_dir)
    key = (str(hf_folder), compute_type, threads)
    with _LOCK:
        cached = _LOADED.get(key)
        if cached is not None:
            return cached
        from transformers import AutoTokenizer

        folder = convert(hf_folder, compute_type, cache_dir)
        generator = ctranslate2.Generator(
            str(folder), device="cpu", compute_type=compute_type, intra_threads=threads, inter_threads=1
        )
        tokenizer = AutoTokenizer.from_pretrained(hf_folder)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        loaded = Ct2Model(generator=generator, tokenizer=tokenizer, path=folder, compute_type=compute_type, threads=threads)
        _LOADED[key] = loaded
        return loaded


def clear_ct2_cache() -> None:
    """Forget every CTranslate2 model loaded in this process."""
    with _LOCK:
        _LOADED.clear()


def _log_softmax(values: Any) -> np.ndarray:
    row = np.asarray(values, dtype=np.float64).ravel()
    top = float(row.max())
    return row - (top + math.log(float(np.exp(row - top).sum())))


def score_options(
    model: Ct2Model, prompts: Sequence[list[int]], options: Sequence[list[list[int]]], prefixes: Sequence[int]
) -> list[list[float]]:
    """Sum of log-probabilities of each option's tokens after each prompt (``LocalBackend.score_options``).

    Single-token options: ``prefixes[i]`` leading tokens of prompt ``i`` go as CTranslate2's
    ``static_prompt``, whose state is computed once and reused by later calls with the same prefix
    (the agent's system message), and one row gives the next-token distribution.

    Multi-token options: the whole prompt but its last token is the (uncached) static prompt, computed
    once for the call; each row then starts from that last token. CTranslate2 forwards a batch's
    common length at once and decodes each longer row's remaining tokens under constraint, returning
    the distribution before each of them, so row ``[last] + option[:-1]`` yields the distribution after
    the prompt and after each of the option's leading tokens: every option scored with one prompt
    pass (the release before ran the prompt once per option prefix length: 0.34 vs 0.27 s per news
    item on int8, 0.58 vs 0.41 s on float32, measured in this release's profile).
    """
    convert_ids = model.tokenizer.convert_ids_to_tokens
    scores: list[list[float]] = []
    for prompt, opts, prefix in zip(prompts, options, prefixes, strict=True):
        multi = sorted({tuple(option[:-1]) for option in opts if len(option) > 1})
        if not multi:
            start = prefix if 0 < prefix < len(prompt) else 0
            (result,) = model.generator.generate_batch(
                [convert_ids(list(prompt[start:]))], static_prompt=convert_ids(list(prompt[:start])) if start else None,
                max_length=1, include_prompt_in_result=False, return_logits_vocab=True, sampling_topk=1,
            )
            first = _log_softmax(result.logits[0][0])
            scores.append([float(first[option[0]]) for option in opts])
            continue
        static = convert_ids(list(prompt[:-1])) if len(prompt) > 1 else None
        rows = [(), *multi]  # () gives the distribution after the prompt even when every option is multi-token
        results = model.generator.generate_batch(
            [convert_ids([prompt[-1], *head]) for head in rows], static_prompt=static, cache_static_prompt=False,
            max_length=max(len(option) for option in opts), include_prompt_in_result=False,
            return_logits_vocab=True, sampling_topk=1,
        )
        steps = {head: result.logits[0] for head, result in zip(rows, results, strict=True)}
        row_scores = []
        for option in opts:
            logits = steps[tuple(option[:-1])] if len(option) > 1 else steps[()]
            row_scores.append(float(sum(_log_softmax(logits[k])[token] for k, token in enumerate(option))))
        scores.append(row_scores)
    return scores


def generate(
    model: Ct2Model,
    prompt: list[int],
    *,
    max_tokens: int,
    temperature: float,
    seed: int,
    stop: Callable[[str], bool] | None = None,
) -> tuple[str, int]:
    """Greedy (temperature 0) or seeded sampled continuation of ``prompt``: (text, new tokens)."""
    tokenizer = model.tokenizer
    produced: list[int] = []

    def step(result: Any) -> bool:
        produced.append(int(result.token_id))
        return bool(stop is not None and stop(tokenizer.decode(produced, skip_special_tokens=True)))

    options: dict[str, Any] = {"sampling_topk": 1}
    if temperature > 0:
        _require_ctranslate2().set_random_seed(seed)
        options = {"sampling_topk": 0, "sampling_topp": 1.0, "sampling_temperature": temperature}
    result = model.generator.generate_batch(
        [tokenizer.convert_ids_to_tokens(prompt)], max_length=max_tokens, include_prompt_in_result=False, return_end_token=True,
        callback=step if stop is not None else None, **options,
    )[0]
    # With a stop test the callback saw every token, up to the one that completed the text.
    ids = produced if stop is not None else list(result.sequences_ids[0])
    return tokenizer.decode(ids, skip_special_tokens=True), len(ids)
