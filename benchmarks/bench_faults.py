"""Fault run: every agent on a misbehaving OpenAI-compatible server, with and without kill -9.

    .venv/bin/python benchmarks/bench_faults.py [--sessions 40] [--kills 2] [--out DIR]

The server (tests/llm/openai_stub.py, on 127.0.0.1 in this process) answers each distinct request
by a plan drawn from a hash of its content: a clean answer, one or two faults and then the answer,
or a fault every time (the call ends in its recorded fallback). The faults are every class the
openai backend handles: HTTP 400/409/429/500/503, a 502 HTML page, an HTML 200, truncated JSON,
``"choices": []`` and a hang past the timeout (retried with the same request), and null content,
an answer cut at the length limit, garbage text and an out-of-enum answer (which move the call on
to a repair request). Because a plan depends on the request alone, a run killed mid-call and
resumed meets the same faults as one never killed.

Two runs of the same scenario (subprocesses of ``run.py``): A straight through; B killed with
SIGKILL ``--kills`` times (after a share of A's request count each) and resumed each time. Prints
per fault class the replies served and what the calls ended with, then crashes (exits other than
0 and the kills), sessions in the final equity of each run and whether B's fills and equity equal A's.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "llm"))

from openai_stub import Reply, StubOpenAIServer, completion, cut_off, error, no_choices, raw  # noqa: E402

TIMEOUT_S = 3.0  # well above a loaded machine's slowest clean reply: only the scripted hangs time out
FAULTS: dict[str, Any] = {
    "http_400": lambda: error(400, "bad request"),
    "http_409": lambda: error(409, "conflict"),
    "http_429": lambda: error(429, "rate limited", err_type="requests"),
    "http_500": lambda: error(500, "boom", err_type="server_error"),
    "http_503": lambda: error(503, "overloaded", err_type="server_error"),
    "html_502": lambda: raw(b"<html>502 Bad Gateway</html>", status=502, content_type="text/html"),
    "html_200": lambda: raw(b"<html>maintenance</html>", content_type="text/html"),
    "truncated_json": lambda: raw(b'{"id": "x", "choices": [{"index": 0, "mess'),
    "empty_choices": no_choices,
    "hang": lambda: Reply(delay_s=TIMEOUT_S * 1.5, body=completion("late").body),
}
# Answers the SDK or the validator refuses: the call moves on to a repair request (new content), so
# one of these followed by a clean reply would depend on whether a killed run had already sent it.
# They therefore only ever come as a fault on every request of that content.
ANSWER_FAULTS: dict[str, Any] = {
    "cut_off": lambda: cut_off('{"choice": "'),
    "garbage": lambda: completion("I think the market is going to the moon!!! {"),
    "out_of_enum": lambda: completion('{"choice": "yolo"}'),
    "null_content": lambda: completion(None),
}


class FaultServer(StubOpenAIServer):
    """The stub, answering each request by the plan of its content (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: collections.Counter[str] = collections.Counter()
        self.served: collections.Counter[str] = collections.Counter()
        self.plan_lock = threading.Lock()
        server = self

        class Script(list):  # the base class pops the next reply; we compute it from the last request
            def pop(self, index: int = -1) -> Reply:
                return server.reply_for(server.requests[-1])

            def __bool__(self) -> bool:
                return True

        self.script = Script()

    @staticmethod
    def plan(key: str, answer: Reply) -> list[tuple[str, Reply]]:
        rng = random.Random(key)
        draw = rng.random()
        if draw < 0.35:
            return [("clean", answer)]
        if draw < 0.80:  # transport faults, retried with the same content, then the answer
            count = 1 if rng.random() < 0.7 else 2
            return [*((name, FAULTS[name]()) for name in rng.sample(list(FAULTS), count)), ("clean", answer)]
        everything = {**FAULTS, **ANSWER_FAULTS}
        name = rng.choice(sorted(everything))
        return [(name, everything[name]())]  # on every request of this content: the call ends in its fallback

    def reply_for(self, request: dict[str, Any]) -> Reply:
        key = hashlib.sha256(json.dumps([request.get("messages"), request.get("response_format")], sort_keys=True).encode()).hexdigest()
        schema = ((request.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
        options = ((schema.get("properties") or {}).get("choice") or {}).get("enum")
        rng = random.Random(key + "answer")
        answer = completion(json.dumps({"choice": rng.choice(options)}) if options else "Lesson: size down after losses.")
        with self.plan_lock:
            plan = self.plan(key, answer)
            name, reply = plan[min(self.seen[key], len(plan) - 1)]
            self.seen[key] += 1
            self.served[name] += 1
        return reply


def scenario_overrides(base_url: str, sessions: int, runs_dir: Path) -> list[str]:
    backend = {"kind": "openai", "model": "stub-model", "base_url": base_url, "api_key_env": None,
               "timeout_s": TIMEOUT_S, "choose_method": "json_schema"}
    sets = {
        "name": "faults", "runs_dir": str(runs_dir), "llm.default": "remote", "llm.backends.remote": backend,
        "llm.retry": {"max_attempts": 4, "base_delay_s": 0.0, "max_consecutive_failures": 1000},
        "data.days": 30 + sessions, "data.news_per_day": 1.0, "episode.warmup_days": 30,
        "episode.train_days": sessions // 2, "episode.test_days": sessions - sessions // 2,
        "learning.enabled": False,
    }
    return [arg for key, value in sets.items() for arg in ("--set", f"{key}={json.dumps(value)}")]


def run_cli(args: list[str], log: Path, kill_after: int | None = None, server: FaultServer | None = None) -> int:
    """Run ``run.py`` as a subprocess; SIGKILL it once the server has seen ``kill_after`` requests."""
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, str(REPO / "run.py"), *args, "--no-progress"],
                                   cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        while process.poll() is None:
            if kill_after is not None and server is not None and len(server.requests) >= kill_after:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return -9
            time.sleep(0.05)
    return process.returncode


def outcomes(run_dir: Path) -> collections.Counter[str]:
    """How the model calls in a run's traces ended: answered, or fallback (server / answer)."""
    counts: collections.Counter[str] = collections.Counter()
    for line in (run_dir / "traces.jsonl").read_text().splitlines():
        for call in json.loads(line).get("llm_calls") or []:
            if call.get("cache_hit"):
                continue
            counts["fallback (server)" if call.get("server_failure") else "fallback (answer)" if call.get("fallback") else "answered"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40, help="training + test sessions (after 30 warm-up)")
    parser.add_argument("--kills", type=int, default=2, help="SIGKILLs during run B")
    parser.add_argument("--out", type=Path, help="runs folder (default: a temporary one)")
    args = parser.parse_args(argv)
    root = args.out or Path(tempfile.mkdtemp(prefix="tg-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    served: dict[str, collections.Counter[str]] = {}
    for label in ("A", "B"):
        runs = root / label
        with FaultServer() as server:
            base = scenario_overrides(server.base_url, args.sessions, runs)
            log = root / f"{label}.log"
            exits = []
            if label == "A" or args.kills == 0:  # --kills 0: a control, two straight runs
                exits.append(run_cli(["run", str(REPO / "scenarios/demo.yaml"), *base], log))
            else:
                total = results["A"]["requests"]
                marks = [total * (k + 1) // (args.kills + 1) for k in range(args.kills)]
                exits.append(run_cli(["run", str(REPO / "scenarios/demo.yaml"), *base], log, marks[0], server))
                run_dir = next(runs.iterdir())
                for mark in marks[1:]:
                    exits.append(run_cli(["resume", run_dir.name, "--runs-dir", str(runs)], log, mark, server))
                exits.append(run_cli(["resume", run_dir.name, "--runs-dir", str(runs)], log))
            run_dir = next(runs.iterdir())
            equity = (run_dir / "equity.csv").read_text() if (run_dir / "equity.csv").exists() else ""
            results[label] = {
                "exits": exits, "requests": len(server.requests), "run_dir": run_dir,
                "equity": equity, "fills": (run_dir / "fills.csv").read_text() if equity else "",
                "sessions": max(0, len(equity.splitlines()) - 1), "outcomes": outcomes(run_dir),
            }
            served[label] = server.served
    a, b = results["A"], results["B"]
    print(f"{'reply served':<18}{'run A':>8}{'run B':>8}")
    for name in ["clean", *FAULTS, *ANSWER_FAULTS]:
        print(f"{name:<18}{served['A'][name]:>8}{served['B'][name]:>8}")
    print(f"{'requests':<18}{a['requests']:>8}{b['requests']:>8}")
    print()
    print(f"{'calls ended as':<18}{'run A':>8}{'run B':>8}")
    for name in ("answered", "fallback (answer)", "fallback (server)"):
        print(f"{name:<18}{a['outcomes'][name]:>8}{b['outcomes'][name]:>8}")
    print()
    crashes = sum(1 for code in a["exits"] + b["exits"] if code not in (0, -9))
    print(f"exit codes: A {a['exits']}   B {b['exits']}   crashes: {crashes}")
    print(f"test sessions in equity.csv: A {a['sessions']}   B {b['sessions']}   lost: {a['sessions'] - b['sessions']}")
    same = a["equity"] == b["equity"] and a["fills"] == b["fills"] and bool(a["equity"])
    print(f"B's fills.csv and equity.csv equal A's: {same}")
    print(f"runs: {root}")
    return 0 if same and crashes == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
