"""Anonymized prompts: the transform on hand-made text, and a run where no real ticker, name or
date reaches any request the model receives (all agents on the loopback stub)."""

from __future__ import annotations

import json
import re
import sys
from datetime import date
from pathlib import Path

import pytest

from agents.anonymize import Anonymizer
from agents.contamination import contamination_report
from agents.llm.config import LLMConfig
from agents.runtime import execute, load_data
from env.sources.newswriter import company_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))
from openai_stub import StubOpenAIServer, completion  # noqa: E402


def anonymizer() -> Anonymizer:
    return Anonymizer.for_tickers(
        ["ACME", "SP500"], {"ACME": ["Acme Corp", "Acme"], "SP500": ["S&P 500"]}, date(2023, 1, 2), date(2023, 12, 29),
        people={"ACME": ["Jane Doe"]},
    )


def test_aliases_are_consistent_and_keep_numbers() -> None:
    text = ("On 2023-09-14 ACME ($ACME, Acme Corp) said Jane Doe of Acme expects FY2023 sales of 2023.5m; "
            "September 14, 2023; the S&P 500 closed at 4,450.12; ACMEX and 1985 stay.")
    out = anonymizer()(text)
    # 2023-09-14 (a Thursday) moves by whole weeks: 64,652 days = 9,236 weeks, still a Thursday.
    assert out == ("On 2200-09-18 ASSET_A ($ASSET_A, Company A) said Person A1 of Company A expects FY2200 sales of "
                   "2023.5m; September 18, 2200; the Company B closed at 4,450.12; ACMEX and 1985 stay.")
    assert date(2200, 9, 18).weekday() == date(2023, 9, 14).weekday()
    assert anonymizer()(out) == out  # aliased text is left alone (lessons written from aliased prompts)


def test_contamination_report_flags_a_test_window_before_the_cutoff() -> None:
    llm = LLMConfig.model_validate({
        "backends": {
            "local": {"kind": "local", "training_cutoff": "2024-06-30"},
            "gpt": {"kind": "openai", "model": "m", "training_cutoff": "2013-12-31"},
        },
        "default": "local", "agents": {"direction": "gpt"},
    })
    report = contamination_report(llm, {"local", "gpt"}, date(2014, 1, 2), date(2014, 12, 31), anonymized=False, synthetic=False)
    assert report["backends"] == {
        "gpt": {"training_cutoff": "2013-12-31", "test_starts_before_cutoff": False},
        "local": {"training_cutoff": "2024-06-30", "test_starts_before_cutoff": True},
    }
    assert "local 2024-06-30" in report["warning"] and "anonymize.enabled" in report["warning"]
    synthetic = contamination_report(llm, {"local"}, date(2014, 1, 2), date(2014, 12, 31), anonymized=False, synthetic=True)
    assert synthetic["warning"] is None  # invented data cannot have been memorized


@pytest.mark.slow
def test_no_real_ticker_name_or_date_reaches_the_model(tiny):
    with StubOpenAIServer(default=completion("hold")) as stub:
        config = tiny(**{
            "name": "anon", "episode.train_days": 2, "episode.test_days": 2, "anonymize.enabled": True,
            # Off: the reward adapter reads its texts through the same transform (AdapterHandle), but would
            # featurize every aliased text with the local model, minutes on 2 cores. Not checked here.
            "learning.enabled": False,
            "llm.backends.remote": {"kind": "openai", "provider": "transformers", "model": "stub-model",
                                    "base_url": stub.base_url, "training_cutoff": "2030-01-01"},
            "llm.default": "remote",
        })
        outcome = execute(config, resume=False, progress=False)
    assert outcome.finished
    sent = "\n".join(message["content"] for request in stub.requests for message in request["messages"])
    assert len(stub.requests) > 20 and "ASSET_A" in sent
    company = company_for("ACME")
    for real in ("ACME", company.name, company.short, company.ceo):
        assert real not in sent, real
    data = load_data(config)
    assert not any(str(day) in sent for day in data.dates)
    assert not re.search(rf"\b{data.dates[0].year}\b", sent)
    assert re.search(r"\b22\d\d-\d\d-\d\d\b", sent)  # the dates are there, moved
    written = json.loads((outcome.run_dir / "metrics.json").read_text())
    assert "statistics" in written and "sharpe" in written  # the contamination block is added, nothing replaced
    contamination = written["contamination"]
    assert contamination["anonymized"] and contamination["backends"]["remote"]["test_starts_before_cutoff"]
    assert contamination["warning"] is None  # synthetic data
