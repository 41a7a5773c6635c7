"""`run.py doctor` and run's preflight: on the scripted loopback server and a closed port."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import yaml
from openai_stub import StubOpenAIServer, completion, token_logprobs

import run
from agents.llm.config import LLMConfig
from agents.llm.doctor import diagnose

REPO = Path(__file__).resolve().parents[2]


def scenario(tmp_path: Path, backend: dict) -> Path:
    raw = yaml.safe_load((REPO / "scenarios" / "demo_openai.yaml").read_text())
    raw["llm"]["backends"]["openai"] = backend
    raw["runs_dir"] = str(tmp_path / "runs")
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_with_a_missing_key_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TG_DOCTOR_KEY", raising=False)
    path = scenario(tmp_path, {"kind": "openai", "model": "gpt-4o-mini", "api_key_env": "TG_DOCTOR_KEY"})
    assert run.main(["run", str(path), "--no-progress"]) == 2
    assert "$TG_DOCTOR_KEY is not set" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # no run folder, no data generated, no model loaded


def test_doctor_on_an_unreachable_backend_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, {"kind": "openai", "model": "m", "base_url": f"http://127.0.0.1:{closed_port()}/v1"})
    started = time.perf_counter()
    assert run.main(["doctor", str(path)]) == 1
    assert time.perf_counter() - started < 5
    out = capsys.readouterr().out
    assert "reachable" in out and "FAIL" in out and "1 check(s) failed" in out


def test_doctor_table_on_a_server_that_ignores_schemas(stub: StubOpenAIServer) -> None:
    stub.default = completion("hello", model="stub-model", logprobs=token_logprobs([("hello", -0.1, {"hello": -0.1})]))
    config = LLMConfig.model_validate({
        "backends": {"srv": {"kind": "openai", "model": "stub-model", "base_url": stub.base_url}}, "default": "srv",
    })
    checks = {check.check: check for check in diagnose(config, {"srv"})}
    assert checks["key set"].status == "ok" and checks["reachable"].status == "ok"
    assert checks["model known"].status == "ok" and checks["latency"].status == "ok"
    assert checks["json_schema honoured"].status == "warn"  # declared (default) but the stub ignores it
    assert "capabilities.json_schema: false" in checks["json_schema honoured"].detail
    assert checks["tools honoured"].status == "warn"
    assert checks["logprobs returned"].status == "ok" and "not declared" in checks["logprobs returned"].detail
    sent = stub.requests
    assert sent[1]["response_format"]["type"] == "json_schema" and sent[2]["tool_choice"]["function"]["name"] == "Probe"


def test_doctor_fails_on_an_unknown_model(stub: StubOpenAIServer) -> None:
    config = LLMConfig.model_validate({
        "backends": {"srv": {"kind": "openai", "model": "gpt-9", "base_url": stub.base_url}}, "default": "srv",
    })
    checks = {check.check: check for check in diagnose(config, {"srv"})}
    assert checks["model known"].status == "FAIL" and "'gpt-9' not served" in checks["model known"].detail
    assert "latency" not in checks and len(stub.requests) == 0  # no chat request after a failed check
