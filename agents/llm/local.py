"""The embedded backend: a small causal LM (default SmolLM2-135M-Instruct) on CPU.

``choose`` does not generate: it scores each option's log-likelihood as the assistant's
continuation of the prompt. The prompt is run once with its KV cache (a prefix shared by the
prompts of one call, such as the agent's system message, is cached across calls); options of one token
are read off the last position's logits, longer options are scored in one extra batched
pass over the cached prompt. Raw scores of a model this small rank the options the same
way whatever the input (a prior towards "buy"), so by default they are *calibrated*: each
option's log-likelihood under a content-free version of the prompt (every user message
replaced by "N/A") is subtracted before the softmax (Zhao et al. 2021, "Calibrate before
use"). On content-free input the calibrated probabilities are therefore uniform.

``runtime: ctranslate2`` computes the same scores and generations with CTranslate2
(``agents/llm/ct2_runtime.py``); everything above (calibration, the cached system prefix, the
fallbacks) is shared by both runtimes.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from env.errors import LLMError

from .base import CallRecord, ChatMessage, ChoiceRequest, ChoiceResult, StructuredResult, TextResult
from .config import LocalBackendConfig
from .local_model import LocalModel, cache_kwarg, load_local_model, on_model_thread, output_cache

CONTENT_FREE = "N/A"
_JSON_INSTRUCTION = (
    "Reply with one JSON object that validates against this JSON schema, and nothing else "
    "(no prose, no code fences).\nJSON schema: {schema}"
)
_REPAIR_INSTRUCTION = (
    "That reply was not valid: {error}. Reply again with only the corrected JSON object."
)


def local_model_id(config: LocalBackendConfig) -> str:
    """Stable model name for records and cache keys, without loading anything."""
    if config.model_path is None:
        return "SmolLM2-135M-Instruct.Q4_1"
    return Path(config.model_path).name.removesuffix(".gguf")


def content_free(messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
    """The same conversation with every user message replaced by ``CONTENT_FREE``."""
    return tuple(
        ChatMessage(role="user", content=CONTENT_FREE) if message.role == "user" else message for message in messages
    )


def extract_json_object(text: str) -> Any:
    """Parse the first JSON object in ``text``; raises ``ValueError`` if there is none."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object found (no '{')")
    value, _ = json.JSONDecoder().raw_decode(text[start:])
    return value


def _softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return [value / total for value in exps]


class LocalBackend:
    """The embedded model on CPU (torch eager, or CTranslate2). Loaded on first use, never at construction."""

    kind = "local"

    def __init__(
        self, config: LocalBackendConfig, *, loader: Callable[..., LocalModel] = load_local_model
    ) -> None:
        self.config = config
        self.model_name = local_model_id(config)
        self._loader = loader
        self._loaded: LocalModel | None = None
        self._ct2: Any = None  # agents.llm.ct2_runtime.Ct2Model, with runtime: ctranslate2
        self._lock = threading.RLock()
        # Content-free scores per (template messages, options): computed once per process.
        self._calibration: dict[str, list[float]] = {}
        # KV cache of shared prompt prefixes (token tuple -> per-layer (key, value)), least recently used first.
        self._prefixes: OrderedDict[tuple[int, ...], list[tuple[Any, Any]]] = OrderedDict()
        self.prefix_hits = 0

    # ------------------------------------------------------------------ loading
    @property
    def loaded(self) -> LocalModel:
        """The model, loaded on first access."""
        if self._loaded is None:
            cache_dir = Path(self.config.cache_dir) if self.config.cache_dir else None
            self._loaded = self._loader(self.config.model_path, self.config.threads, cache_dir)
        # torch's thread count is process-wide: re-assert ours in case another backend changed it.
        import torch

        if torch.get_num_threads() != self.config.threads:
            torch.set_num_threads(self.config.threads)
        return self._loaded

    @property
    def ct2(self) -> Any:
        """The CTranslate2 model (runtime: ctranslate2), converted once and loaded on first access."""
        if self._ct2 is None:
            from .ct2_runtime import load_ct2_model

            cache_dir = Path(self.config.cache_dir) if self.config.cache_dir else None
            self._ct2 = load_ct2_model(
                self.config.model_path, compute_type=self.config.compute_type, threads=self.config.threads,
                cache_dir=cache_dir,
            )
        return self._ct2

    @property
    def uses_ct2(self) -> bool:
        return self.config.runtime == "ctranslate2"

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (the same folder's for both runtimes)."""
        return self.ct2.tokenizer if self.uses_ct2 else self.loaded.tokenizer

    @property
    def is_loaded(self) -> bool:
        """True once a call has loaded the model."""
        return self._loaded is not None or self._ct2 is not None

    def close(self) -> None:
        """Drop this backend's reference to the model."""
        self._loaded = None
        self._ct2 = None

    def _record(self, agent: str, kind: str, start: float, **fields: Any) -> CallRecord:
        return CallRecord(
            agent=agent,
            backend=self.kind,
            model=self.model_name,
            kind=kind,
            latency_s=time.perf_counter() - start,
            cache_hit=False,
            cost_usd=0.0,
            **{"fallback": False, "attempts": 1, "tokens_out": 0, **fields},
        )

    def _prompt_ids(self, messages: Sequence[ChatMessage], suffix: str = "") -> list[int]:
        tokenizer = self.tokenizer
        rendered = tokenizer.apply_chat_template(
            [message.model_dump() for message in messages], add_generation_prompt=True, tokenize=False
        )
        return list(tokenizer(rendered + suffix, add_special_tokens=False)["input_ids"])

    # ------------------------------------------------------------------ text
    def _generate(
        self, prompt: list[int], *, max_tokens: int, temperature: float, stop: Callable[[str], bool] | None = None
    ) -> tuple[str, int]:
        if self.uses_ct2:
            from .ct2_runtime import generate

            return generate(
                self.ct2, prompt, max_tokens=max_tokens, temperature=temperature, seed=self.config.seed, stop=stop
            )
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        model, tokenizer = self.loaded.model, self.loaded.tokenizer
        input_ids = torch.tensor([prompt])
        criteria = StoppingCriteriaList()
        if stop is not None:

            class _Stop(StoppingCriteria):
                # Stop as soon as the text so far is complete (e.g. a closed JSON object).
                def __call__(self, ids: Any, scores: Any, **kwargs: Any) -> Any:
                    done = stop(tokenizer.decode(ids[0, len(prompt):], skip_special_tokens=True))
                    return torch.full((ids.shape[0],), done, dtype=torch.bool)

            criteria.append(_Stop())
        kwargs: dict[str, Any] = dict(
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_tokens,
            pad_token_id=tokenizer.pad_token_id,
            stopping_criteria=criteria,
        )
        with torch.inference_mode():
            if temperature <= 0:
                output = model.generate(input_ids, do_sample=False, temperature=None, top_p=None, top_k=None, **kwargs)
            else:
                # Seeded sampling without touching the global RNG state.
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.config.seed)
                    output = model.generate(input_ids, do_sample=True, temperature=temperature, top_p=1.0, top_k=0, **kwargs)
        new_tokens = output[0, len(prompt):]
        return tokenizer.decode(new_tokens, skip_special_tokens=True), int(new_tokens.shape[0])

    @on_model_thread
    def text(
        self, messages: Sequence[ChatMessage], *, agent: str, max_tokens: int = 128, temperature: float = 0.0
    ) -> TextResult:
        """Generate with the chat template; greedy when ``temperature`` is 0, else seeded sampling."""
        start = time.perf_counter()
        with self._lock:
            prompt = self._prompt_ids(messages)
            text, tokens_out = self._generate(prompt, max_tokens=max_tokens, temperature=temperature)
        record = self._record(agent, "text", start, tokens_in=len(prompt), tokens_out=tokens_out, raw_output=text)
        return TextResult(text=text, record=record)

    # ------------------------------------------------------------------ structured
    @on_model_thread
    def structured(
        self, messages: Sequence[ChatMessage], schema: type[BaseModel], *, agent: str, fallback: BaseModel
    ) -> StructuredResult:
        """Generate JSON for ``schema``; one repair retry; then ``fallback``, recorded with the raw text."""
        start = time.perf_counter()
        instruction = _JSON_INSTRUCTION.format(schema=json.dumps(schema.model_json_schema(), separators=(",", ":")))
        conversation = [*messages, ChatMessage(role="system", content=instruction)]
        tokens_in = tokens_out = attempts = 0
        raw = ""
        error = ""
        with self._lock:
            for attempts in (1, 2):
                # Prefill "{" so even a tiny model starts a JSON object.
                prompt = self._prompt_ids(conversation, suffix="{")
                generated, n_out = self._generate(
                    prompt, max_tokens=self.config.max_new_tokens, temperature=0.0, stop=_json_complete
                )
                raw = "{" + generated
                tokens_in += len(prompt)
                tokens_out += n_out
                try:
                    value = schema.model_validate(extract_json_object(raw))
                except (ValueError, ValidationError) as exc:  # JSONDecodeError and ValidationError are ValueErrors
                    error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                    conversation = [
                        *conversation,
                        ChatMessage(role="assistant", content=raw),
                        ChatMessage(role="user", content=_REPAIR_INSTRUCTION.format(error=error)),
                    ]
                    continue
                record = self._record(
                    agent, "structured", start, tokens_in=tokens_in, tokens_out=tokens_out,
                    raw_output=raw, attempts=attempts, error=error or None,
                )
                return StructuredResult(value=value, record=record)
        record = self._record(
            agent, "structured", start, tokens_in=tokens_in, tokens_out=tokens_out, raw_output=raw,
            attempts=attempts, fallback=True, fallback_reason="invalid JSON after one repair retry", error=error,
        )
        return StructuredResult(value=fallback, record=record)

    # ------------------------------------------------------------------ choose
    def _option_ids(self, options: Sequence[str]) -> list[list[int]]:
        tokenizer = self.tokenizer
        ids = [list(tokenizer(option, add_special_tokens=False)["input_ids"]) for option in options]
        for option, tokens in zip(options, ids):
            if not tokens:
                raise LLMError(f"option {option!r} encodes to no tokens")
        return ids

    def _system_prefix_len(self, messages: Sequence[ChatMessage], prompt: list[int]) -> int:
        """Tokens of ``prompt`` that encode its leading system message(s): the part an agent repeats on
        every call. 0 when there is none or its tokens are not an exact prefix of the prompt."""
        system = []
        for message in messages:
            if message.role != "system":
                break
            system.append(message.model_dump())
        if not system:
            return 0
        tokenizer = self.tokenizer
        rendered = tokenizer.apply_chat_template(system, add_generation_prompt=False, tokenize=False)
        ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        return len(ids) if prompt[: len(ids)] == list(ids) else 0

    def _shared_prefix(self, prompts: Sequence[list[int]], cacheable: Sequence[int]) -> tuple[int, ...]:
        """The longest common token prefix of ``prompts`` within each one's cacheable part (its system
        message), leaving every prompt at least one token; empty if too short to be worth caching."""
        if self.config.prefix_cache_entries == 0:
            return ()
        limit = min(min(len(prompt) for prompt in prompts) - 1, min(cacheable))
        length = 0
        first = prompts[0]
        while length < limit and all(prompt[length] == first[length] for prompt in prompts):
            length += 1
        return tuple(first[:length]) if length >= self.config.min_prefix_tokens else ()

    def _prefix_kv(self, prefix: tuple[int, ...]) -> list[tuple[Any, Any]]:
        """Per-layer (key, value) tensors of ``prefix``: computed once, then reused (LRU)."""
        import torch

        cached = self._prefixes.get(prefix)
        if cached is not None:
            self._prefixes.move_to_end(prefix)
            self.prefix_hits += 1
            return cached
        with torch.inference_mode():
            out = self.loaded.model(input_ids=torch.tensor([prefix]), use_cache=True, logits_to_keep=1)
        kv = [(layer.keys, layer.values) for layer in output_cache(out).layers]
        self._prefixes[prefix] = kv
        while len(self._prefixes) > self.config.prefix_cache_entries:
            self._prefixes.popitem(last=False)
        return kv

    def score_options(
        self, prompts: Sequence[list[int]], options: Sequence[list[list[int]]], cacheable: Sequence[int] | None = None
    ) -> list[list[float]]:
        """Sum of log-probabilities of each option's tokens after each prompt, batched.

        A prefix shared by all prompts (an agent's system message and the chat template around it) is
        run once and its KV cache reused across calls. One forward pass over the rest of the prompts
        (right-aligned, padding between prefix and suffix) gives every option's first token; a second
        pass over the cached prompts scores the remaining tokens of multi-token options.
        ``cacheable[i]``: how many leading tokens of prompt ``i`` may be cached (None: none).
        Returns ``scores[i][j]`` for prompt ``i``, option ``j``. With ``runtime: ctranslate2`` the same
        scores come from ``ct2_runtime.score_options`` (each prompt's cacheable prefix as its static
        prompt), except float32 prompts with multi-token options, which stay on torch (see below).
        """
        multi_token = any(len(option) > 1 for opts in options for option in opts)
        if self.uses_ct2 and not (multi_token and self.config.compute_type == "float32"):
            # float32 hands prompts with multi-token options to torch's cached continuation below: the
            # same numbers (to 1e-4), and faster. CTranslate2 scores them with one prompt pass but cannot
            # reuse the system prefix's state there (measured on 24 demo news items, 226-236 tokens, a
            # 78-token system prefix: torch batched 0.30 s per item, CTranslate2 float32 0.41 s, int8 0.27 s).
            from .ct2_runtime import score_options

            usable = self.config.prefix_cache_entries > 0 and cacheable is not None
            prefixes = [
                c if usable and c >= self.config.min_prefix_tokens else 0 for c in (cacheable or [0] * len(prompts))
            ]
            return score_options(self.ct2, prompts, options, prefixes)
        import torch
        from transformers import DynamicCache

        model = self.loaded.model
        cache_arg = cache_kwarg(model.forward)
        pad_id = int(self.loaded.tokenizer.pad_token_id)
        prefix = self._shared_prefix(prompts, cacheable) if cacheable else ()
        start = len(prefix)
        suffixes = [prompt[start:] for prompt in prompts]
        batch, width = len(prompts), max(len(suffix) for suffix in suffixes)
        input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
        suffix_mask = torch.zeros((batch, width), dtype=torch.long)
        for row, suffix in enumerate(suffixes):
            input_ids[row, width - len(suffix):] = torch.tensor(suffix)
            suffix_mask[row, width - len(suffix):] = 1
        positions = start + (suffix_mask.cumsum(-1) - 1).clamp(min=0)
        mask = torch.cat([torch.ones((batch, start), dtype=torch.long), suffix_mask], dim=1)
        cache = None
        if prefix:
            cache = DynamicCache(
                ddp_cache_data=[
                    (k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in self._prefix_kv(prefix)
                ]
            )
        with torch.inference_mode():
            # logits_to_keep=1: only the last position's logits are needed; the vocabulary projection
            # over every prompt position would cost ~20% of the pass for nothing.
            out = model(
                input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
                **{cache_arg: cache},
            )
            first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
            scores = [[float(first[row, opts[0]]) for opts in options[row]] for row in range(batch)]
            pairs = [(row, j) for row in range(batch) for j, opts in enumerate(options[row]) if len(opts) > 1]
            if pairs:
                cache = output_cache(out)
                rows = torch.tensor([row for row, _ in pairs])
                cache.batch_select_indices(rows)
                steps = max(len(options[row][j]) - 1 for row, j in pairs)
                cont = torch.full((len(pairs), steps), pad_id, dtype=torch.long)
                cont_mask = torch.zeros((len(pairs), steps), dtype=torch.long)
                for k, (row, j) in enumerate(pairs):
                    tokens = options[row][j][:-1]
                    cont[k, : len(tokens)] = torch.tensor(tokens)
                    cont_mask[k, : len(tokens)] = 1
                lengths = torch.tensor([len(prompts[row]) for row, _ in pairs])
                cont_positions = lengths[:, None] + torch.arange(steps)[None, :]
                full_mask = torch.cat([mask[rows], cont_mask], dim=1)
                out2 = model(
                    input_ids=cont, attention_mask=full_mask, position_ids=cont_positions, use_cache=True,
                    **{cache_arg: cache},
                )
                logprobs = torch.log_softmax(out2.logits.float(), dim=-1)
                for k, (row, j) in enumerate(pairs):
                    targets = options[row][j][1:]
                    scores[row][j] += float(sum(logprobs[k, step, token] for step, token in enumerate(targets)))
        return scores

    def choose(
        self, messages: Sequence[ChatMessage], options: Sequence[str], *, agent: str, fallback: str
    ) -> ChoiceResult:
        """Score the options as continuations; calibrated by default (see module docstring)."""
        request = ChoiceRequest(messages=tuple(messages), options=tuple(options), fallback=fallback)
        return self.choose_many([request], agent=agent)[0]

    @on_model_thread
    def choose_many(self, requests: Sequence[ChoiceRequest], *, agent: str) -> list[ChoiceResult]:
        """Score all requests in batches of ``config.batch_size`` prompts (content-free prompts included)."""
        if not requests:
            return []
        start = time.perf_counter()
        with self._lock:
            option_ids = [self._option_ids(request.options) for request in requests]
            prompts = [self._prompt_ids(request.messages) for request in requests]
            cacheable = [self._system_prefix_len(request.messages, prompt) for request, prompt in zip(requests, prompts)]
            calibration_keys: list[str | None] = [None] * len(requests)
            extra_tokens = 0
            if self.config.calibrate:
                for i, request in enumerate(requests):
                    key = json.dumps(
                        [[m.role, m.content] for m in content_free(request.messages)] + [list(request.options)]
                    )
                    calibration_keys[i] = key
                    if key not in self._calibration:
                        # Scored alone: a batch's padding and shape change the last digits of its
                        # scores, and a key is first needed in a different batch by a process that
                        # resumed a run than by the uninterrupted one.
                        free = content_free(request.messages)
                        free_ids = self._prompt_ids(free)
                        (self._calibration[key],) = self.score_options(
                            [free_ids], [option_ids[i]], [self._system_prefix_len(free, free_ids)]
                        )
                        extra_tokens += len(free_ids)
            scores: list[list[float]] = []
            size = self.config.batch_size
            for begin in range(0, len(prompts), size):
                scores.extend(
                    self.score_options(
                        prompts[begin : begin + size], option_ids[begin : begin + size], cacheable[begin : begin + size]
                    )
                )
        elapsed = time.perf_counter() - start
        results = []
        for i, request in enumerate(requests):
            raw = scores[i]
            key = calibration_keys[i]
            adjusted = [s - c for s, c in zip(raw, self._calibration[key])] if key is not None else raw
            tokens_in = len(prompts[i]) + sum(len(ids) - 1 for ids in option_ids[i])
            if i == 0:
                tokens_in += extra_tokens  # content-free passes are charged to the first call that needed them
            if all(math.isfinite(value) for value in adjusted):
                probs = _softmax(adjusted)
                best = max(range(len(probs)), key=probs.__getitem__)
                choice, fallback_fields = request.options[best], {}
            else:
                probs = [1.0 if option == request.fallback else 0.0 for option in request.options]
                choice = request.fallback
                fallback_fields = {"fallback": True, "fallback_reason": "non-finite option scores"}
            record = CallRecord(
                agent=agent, backend=self.kind, model=self.model_name, kind="choose", tokens_in=tokens_in,
                tokens_out=0, latency_s=elapsed / len(requests), cache_hit=False, cost_usd=0.0,
                fallback=bool(fallback_fields), attempts=1, raw_output=None, error=None,
                fallback_reason=fallback_fields.get("fallback_reason"),
            )
            results.append(
                ChoiceResult(
                    choice=choice,
                    probs=dict(zip(request.options, probs)),
                    scores=dict(zip(request.options, raw)),
                    calibrated=key is not None,
                    record=record,
                )
            )
        return results


def _json_complete(text: str) -> bool:
    """True once ``"{" + text`` holds a balanced JSON object (braces outside strings)."""
    depth, in_string, escaped = 1, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return True
    return False
