"""open_memory against a real `chroma run` server subprocess (the HttpClient path)."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from env.errors import ConfigError, MemoryStoreError
from env.records import SourceType
from memory import ChromaServerConfig, Layer, MemoryConfig, MemoryItem, make_embedding_function, open_memory

AT = dt.datetime(2024, 5, 1, 20, tzinfo=dt.timezone.utc)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = _free_port()
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chroma server did not start (exit code {proc.poll()})")
            time.sleep(0.2)
        yield ChromaServerConfig(host="127.0.0.1", port=port)
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_http_server_path_stores_queries_and_persists(tmp_path, chroma_server, embedder):
    config = MemoryConfig(server=chroma_server, collection_prefix="run-42")
    item = MemoryItem(text="Tesla recalls vehicles over autopilot", ticker="TSLA", source_type=SourceType.FILING_8K,
                      source_id="8k-1", public_at=AT)
    store = open_memory(config, tmp_path / "run", embedding_function=embedder)
    store.add([item], AT)
    store.close()

    reopened = open_memory(config, tmp_path / "run", embedding_function=embedder)
    (hit,) = reopened.query("vehicle recall", ticker="TSLA", as_of=AT)
    assert hit.item.id == item.id and hit.item.layer is Layer.INTERMEDIATE
    assert (tmp_path / "run" / "memory" / "writer.lock").exists()  # the lock still guards the run dir
    with pytest.raises(MemoryStoreError, match="already open for writing"):
        open_memory(config, tmp_path / "run", embedding_function=embedder)
    reopened.close()


def test_unreachable_server_is_a_clear_error(tmp_path, embedder):
    config = MemoryConfig(server=ChromaServerConfig(host="127.0.0.1", port=_free_port()))
    with pytest.raises(MemoryStoreError, match="memory.server: cannot reach Chroma"):
        open_memory(config, tmp_path, embedding_function=embedder)


def test_bad_model_path_names_the_field(tmp_path):
    with pytest.raises(ConfigError, match="memory.embedding_model_path"):
        make_embedding_function(MemoryConfig(embedding_model_path=tmp_path))
