"""Check the backends a scenario uses before any heavy work: ``run.py doctor`` and ``run``'s preflight.

``preflight`` is the cheap part (no network): every key variable a used backend names is set.
``probe`` asks one OpenAI-compatible server, with short timeouts and tiny requests, whether it
is reachable, knows the model, honours ``response_format: json_schema`` and forced tool calls,
and returns logprobs, and how long it takes. A check fails when a run would fail (unreachable,
key missing or rejected, model unknown); a capability the config declares but the server
ignores is a warning (``choose`` then falls back, recorded), with the setting to change.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from env.errors import LLMConfigError

from .config import LLMConfig, LocalBackendConfig, OpenAIBackendConfig, VLLMBackendConfig

Status = Literal["ok", "warn", "FAIL", "skip"]
CONNECT_TIMEOUT_S = 2.0
REQUEST_TIMEOUT_S = 20.0  # a tiny generation on a CPU server takes a second or two
_PROBE_WORD = "zebra-7"  # an answer no model gives by chance: only a server enforcing the schema returns it


@dataclass(frozen=True)
class Check:
    """One row of the doctor's table."""

    backend: str
    check: str
    status: Status
    detail: str


def preflight(config: LLMConfig, used: Iterable[str]) -> list[Check]:
    """The checks that need no network: each used backend's key variable is set."""
    checks = []
    for name in sorted(set(used)):
        backend = config.backends[name]
        env = getattr(backend, "api_key_env", None)
        if isinstance(backend, LocalBackendConfig):
            checks.append(Check(name, "key set", "skip", "embedded model, no key"))
        elif env is None:
            checks.append(Check(name, "key set", "ok", "no key needed (api_key_env: null)"))
        elif os.environ.get(env):
            checks.append(Check(name, "key set", "ok", f"${env} is set"))
        else:
            checks.append(Check(name, "key set", "FAIL", f"${env} is not set or empty (llm.backends.{name}.api_key_env)"))
    return checks


def require_keys(config: LLMConfig, used: Iterable[str]) -> None:
    """Raise ``LLMConfigError`` naming every used backend whose key variable is missing."""
    failed = [check.detail for check in preflight(config, used) if check.status == "FAIL"]
    if failed:
        raise LLMConfigError("; ".join(failed) + ". Set it, or run `python run.py doctor SCENARIO` to check everything")


def diagnose(config: LLMConfig, used: Iterable[str]) -> list[Check]:
    """Preflight plus a probe of every used network backend."""
    checks = preflight(config, used)
    for name in sorted(set(used)):
        backend = config.backends[name]
        if isinstance(backend, VLLMBackendConfig):
            if backend.base_url is None:
                checks.append(Check(name, "reachable", "skip", "started by the run (serve:), not probed"))
                continue
            backend = backend.as_openai(backend.base_url)
        if isinstance(backend, OpenAIBackendConfig):
            key_ok = all(c.status != "FAIL" for c in checks if c.backend == name)
            checks.extend(probe(name, backend) if key_ok else [Check(name, "reachable", "skip", "no key")])
    return checks


def probe(name: str, config: OpenAIBackendConfig) -> list[Check]:
    """Probe one OpenAI-compatible server (see the module docstring)."""
    base = (config.base_url or "https://api.openai.com/v1").rstrip("/")
    key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
    headers = {"Authorization": f"Bearer {key or 'not-needed'}"}
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    with httpx.Client(base_url=base, headers=headers, timeout=timeout) as client:
        started = time.perf_counter()
        try:
            listed = client.get("/models", timeout=httpx.Timeout(CONNECT_TIMEOUT_S * 1.5, connect=CONNECT_TIMEOUT_S))
        except httpx.HTTPError as exc:
            return [Check(name, "reachable", "FAIL", f"{base}: {type(exc).__name__}: {str(exc)[:80]}")]
        checks = [Check(name, "reachable", "ok", f"{base} ({(time.perf_counter() - started) * 1000:.0f} ms)")]
        if listed.status_code in (401, 403):
            return [*checks, Check(name, "key accepted", "FAIL", f"HTTP {listed.status_code} with ${config.api_key_env}")]
        checks.append(_model_check(name, config.model, listed))
        if checks[-1].status == "FAIL":
            return checks
        caps = config.resolved_capabilities
        checks.extend(_capability_checks(name, config, client, caps))
    return checks


def _model_check(name: str, model: str, listed: httpx.Response) -> Check:
    try:
        ids = [entry.get("id") for entry in listed.json().get("data", [])]
    except (json.JSONDecodeError, AttributeError):
        return Check(name, "model known", "warn", f"GET /models gave HTTP {listed.status_code}, no model list")
    if model in ids:
        return Check(name, "model known", "ok", model)
    shown = ", ".join(str(i) for i in ids[:5]) or "none"
    return Check(name, "model known", "FAIL", f"{model!r} not served (llm.backends.{name}.model); served: {shown}")


def _chat(client: httpx.Client, model: str, **extra: Any) -> tuple[dict[str, Any] | None, float, str]:
    """(first choice or None, seconds, error text) of one tiny chat request."""
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16, **extra}
    started = time.perf_counter()
    try:
        reply = client.post("/chat/completions", json=body)
        elapsed = time.perf_counter() - started
        reply.raise_for_status()
        choices = reply.json().get("choices") or []
    except httpx.HTTPStatusError as exc:
        return None, time.perf_counter() - started, f"HTTP {exc.response.status_code}"
    except (httpx.HTTPError, json.JSONDecodeError, AttributeError) as exc:
        return None, time.perf_counter() - started, type(exc).__name__
    return (choices[0] if choices else None), elapsed, "" if choices else "no choices"


def _capability_checks(name: str, config: OpenAIBackendConfig, client: httpx.Client, caps: Any) -> list[Check]:
    schema = {
        "type": "object", "properties": {"word": {"type": "string", "enum": [_PROBE_WORD]}},
        "required": ["word"], "additionalProperties": False,
    }
    choice, latency, error = _chat(client, config.model)
    checks = [Check(name, "latency", "ok" if choice else "FAIL", f"{latency:.2f} s for 16 tokens" if choice else error)]
    if choice is None:
        return checks
    choice, _, error = _chat(
        client, config.model,
        response_format={"type": "json_schema", "json_schema": {"name": "Probe", "schema": schema, "strict": True}},
    )
    content = ((choice or {}).get("message") or {}).get("content") or ""
    try:
        honoured = json.loads(content).get("word") == _PROBE_WORD
    except (json.JSONDecodeError, AttributeError):
        honoured = False
    checks.append(_capability(name, "json_schema honoured", honoured, caps.json_schema, "json_schema", error))
    tool = {"type": "function", "function": {"name": "Probe", "description": "Report a word.", "parameters": schema}}
    choice, _, error = _chat(
        client, config.model, tools=[tool], tool_choice={"type": "function", "function": {"name": "Probe"}}
    )
    honoured = bool(((choice or {}).get("message") or {}).get("tool_calls"))
    checks.append(_capability(name, "tools honoured", honoured, caps.tools, "tools", error))
    choice, _, error = _chat(client, config.model, logprobs=True, top_logprobs=2, max_tokens=2)
    honoured = bool(((choice or {}).get("logprobs") or {}).get("content"))
    checks.append(_capability(name, "logprobs returned", honoured, caps.logprobs, "logprobs", error))
    return checks


def _capability(name: str, check: str, honoured: bool, declared: bool, field: str, error: str) -> Check:
    suffix = f" ({error})" if error else ""
    if honoured == declared:
        return Check(name, check, "ok", ("yes" if honoured else "no, and not declared") + suffix)
    if declared:
        return Check(
            name, check, "warn",
            f"declared but ignored{suffix}; set llm.backends.{name}.capabilities.{field}: false (choose falls back)",
        )
    return Check(name, check, "ok", f"yes, not declared: llm.backends.{name}.capabilities.{field}: true would use it")


def format_table(checks: Iterable[Check]) -> str:
    """The checks as an aligned text table."""
    rows = [("backend", "check", "status", "detail"), *((c.backend, c.check, c.status, c.detail) for c in checks)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{b:<{widths[0]}}  {c:<{widths[1]}}  {s:<{widths[2]}}  {d}" for b, c, s, d in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])
