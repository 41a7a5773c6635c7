from __future__ import annotations

from pathlib import Path

import pytest

from agents.llm.config import LocalBackendConfig
from agents.llm.local import LocalBackend
from agents.llm.local_model import (
    DEFAULT_CACHE_ROOT,
    converted_cache_dir,
    default_model_path,
    is_local_model_loaded,
    load_local_model,
)
from env.errors import ConfigError


def test_default_model_is_the_packaged_gguf() -> None:
    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    cache = converted_cache_dir(path)
    assert cache.parent == DEFAULT_CACHE_ROOT and cache.name.startswith("SmolLM2-135M-Instruct.Q4_1-")


def test_load_once_per_process(local_backend: LocalBackend, local_config: LocalBackendConfig) -> None:
    first = load_local_model(None, local_config.threads)
    assert first is local_backend.loaded and load_local_model(None, local_config.threads) is first
    assert is_local_model_loaded(None, local_config.threads)
    assert not first.model.training and (first.path / "model.safetensors").is_file()


def test_backend_does_not_load_until_first_call(local_config: LocalBackendConfig) -> None:
    calls: list[object] = []
    backend = LocalBackend(local_config, loader=lambda *args: calls.append(args))  # records, never loads
    assert not backend.is_loaded and calls == []


def test_missing_model_path_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model_path: .*does not exist"):
        load_local_model(str(tmp_path / "nope.gguf"))
    (tmp_path / "weights.bin").write_bytes(b"0")
    with pytest.raises(ConfigError, match="neither a GGUF file nor a model folder"):
        load_local_model(str(tmp_path / "weights.bin"))
