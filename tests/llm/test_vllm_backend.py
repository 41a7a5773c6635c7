"""vLLM backend. Real vLLM needs a GPU and cannot run on this CPU-only machine, so the serve path is
tested with a fake `vllm` executable on PATH that starts the loopback OpenAI-compatible stub server
(tests/llm/openai_stub.py) as a real subprocess; everything else (spawn, health polling, requests,
SIGTERM/SIGKILL shutdown) is the real code path."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import httpx
import pytest
from openai_stub import StubOpenAIServer, completion, token_logprobs

from agents.llm.base import ChatMessage
from agents.llm.config import LLMConfig, VLLMBackendConfig, VLLMServeConfig
from agents.llm.factory import LLMPool, make_llm
from agents.llm.vllm_backend import VLLMServer
from env.errors import LLMConfigError, LLMError

HERE = Path(__file__).resolve().parent
MESSAGES = [ChatMessage(role="user", content="hello")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str | None = None) -> Path:
    """Put an executable called `vllm` first on PATH; by default it runs the stub server."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    argv_file = tmp_path / "argv.json"
    body = body or (
        f"import json, sys\nsys.path.insert(0, {str(HERE)!r})\n"
        f"open({str(argv_file)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "from openai_stub import main\nmain(sys.argv[1:])\n"
    )
    script = bin_dir / "vllm"
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return argv_file


def serve_config(port: int, **overrides: object) -> VLLMServeConfig:
    settings: dict[str, object] = {
        "model": "fake/model", "port": port, "args": ("--dtype", "auto"), "startup_timeout_s": 30.0,
        "poll_interval_s": 0.1, "stop_timeout_s": 2.0,
    }
    settings.update(overrides)
    return VLLMServeConfig(**settings)  # type: ignore[arg-type]


def test_serve_starts_answers_and_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv_file = fake_vllm(tmp_path, monkeypatch)
    port = free_port()
    config = LLMConfig(backends={"gpu": VLLMBackendConfig(serve=serve_config(port))}, default="gpu")
    with LLMPool(config) as pool:
        llm = make_llm(config, "news", pool=pool)
        result = llm.text(MESSAGES, agent="news")
        assert result.text == "served by fake vllm" and result.record.backend == "vllm"
        assert json.loads(argv_file.read_text()) == ["serve", "fake/model", "--port", str(port), "--dtype", "auto"]
        process = pool.backend("gpu").server.process  # type: ignore[attr-defined]
        assert process is not None and process.poll() is None
    assert process.poll() is not None  # stopped with the pool
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0)


def test_serve_without_vllm_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LLMConfigError, match=r"pip install tradegraph\[vllm\]` on a GPU host"):
        VLLMServer(serve_config(free_port()), name="gpu").start()


def test_server_that_dies_reports_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_vllm(tmp_path, monkeypatch, body="import sys\nprint('RuntimeError: no CUDA GPUs are available')\nsys.exit(3)\n")
    with pytest.raises(LLMError, match=r"exited with code 3(.|\n)*no CUDA GPUs"):
        VLLMServer(serve_config(free_port()), name="gpu").start()


def test_server_ignoring_sigterm_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = (
        f"import signal, sys\nsys.path.insert(0, {str(HERE)!r})\n"
        "from openai_stub import StubOpenAIServer\nimport time\n"
        "port = int(sys.argv[sys.argv.index('--port') + 1])\n"
        "StubOpenAIServer(port).start()\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "while True:\n    time.sleep(0.1)\n"
    )
    fake_vllm(tmp_path, monkeypatch, body=body)
    server = VLLMServer(serve_config(free_port(), stop_timeout_s=0.5), name="gpu").start()
    process = server.process
    assert process is not None
    server.stop()
    assert process.returncode == -9  # SIGKILL after the SIGTERM grace period


def test_running_server_by_base_url_uses_logprobs(stub: StubOpenAIServer) -> None:
    pieces = token_logprobs([('{"choice": "', -0.1, {}), ("up", -0.2, {"up": -0.2, "down": -1.8})])
    stub.push(completion('{"choice": "up"}', logprobs=pieces))
    config = LLMConfig(
        backends={"v": VLLMBackendConfig(base_url=stub.base_url, model="served", choice_smoothing=0.0)}, default="v"
    )
    with LLMPool(config) as pool:
        result = make_llm(config, "dir", pool=pool).choose(MESSAGES, ["up", "down"], agent="dir", fallback="down")
    assert result.choice == "up" and stub.requests[0]["model"] == "served" and stub.requests[0]["logprobs"] is True
    assert result.probs["up"] == pytest.approx(0.8187307 / (0.8187307 + 0.1652989), rel=1e-5)
