"""Contamination control: does the test window overlap what the models were trained on?

Each backend can declare ``training_cutoff`` (the last date of its training data). A test window
that starts on or before a used backend's cutoff on real data is not out of sample: the model may
have read what happened next. The run then warns loudly, and ``metrics.json`` carries this report
under ``contamination`` (``run.py run`` prints its warning under the metrics table).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import date
from typing import Any

from agents.llm.config import LLMConfig


def contamination_report(
    llm: LLMConfig, used: Iterable[str], test_start: date, test_end: date, *, anonymized: bool, synthetic: bool
) -> dict[str, Any]:
    """The JSON-ready report: each used backend's cutoff, whether the test starts before it, and the warning."""
    backends: dict[str, dict[str, Any]] = {}
    for name in sorted(set(used)):
        cutoff = getattr(llm.backends[name], "training_cutoff", None)
        backends[name] = {
            "training_cutoff": None if cutoff is None else cutoff.isoformat(),
            "test_starts_before_cutoff": None if cutoff is None else test_start <= cutoff,
        }
    exposed = [name for name, row in backends.items() if row["test_starts_before_cutoff"]]
    warning = None
    if exposed and not synthetic:
        cutoffs = ", ".join(f"{name} {backends[name]['training_cutoff']}" for name in exposed)
        probe = "prompts were anonymized" if anonymized else "set anonymize.enabled: true to probe memorization"
        warning = (
            f"test window {test_start}..{test_end} starts before the training cutoff of {cutoffs}: the model may "
            f"have seen what happened next, so these results are not out of sample ({probe})"
        )
    return {
        "test_start": test_start.isoformat(), "test_end": test_end.isoformat(), "synthetic_data": synthetic,
        "anonymized": anonymized, "backends": backends, "warning": warning,
    }


def warn(report: dict[str, Any]) -> None:
    """Print the report's warning to stderr, so it is seen before a long run starts."""
    if report["warning"]:
        print(f"WARNING (contamination): {report['warning']}", file=sys.stderr)
