"""EDGAR: the full-submission parser on realistic fixtures, and cache-first loading."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from env.config import EdgarConfig
from env.errors import DataError, DataUnavailableError
from env.records import NEW_YORK, SourceType
from env.sources.edgar import html_to_text, load_edgar_filings, parse_submission, split_sections

EDGAR = Path(__file__).resolve().parents[1] / "fixtures" / "edgar"
TEN_K = EDGAR / "sec-edgar-filings/ACME/10-K/0000000000-24-000001/full-submission.txt"
EIGHT_K = EDGAR / "sec-edgar-filings/ACME/8-K/0000000000-24-000007/full-submission.txt"


def test_10k_header_and_sections() -> None:
    filing = parse_submission(TEN_K, "ACME")
    assert filing.id == "edgar-0000000000-24-000001"
    assert filing.form == "10-K" and filing.source_type is SourceType.FILING_10K
    assert filing.period == dt.date(2023, 12, 31)
    # ACCEPTANCE-DATETIME 20240214163512 is New York time.
    assert filing.filed_at.astimezone(NEW_YORK).replace(tzinfo=None) == dt.datetime(2024, 2, 14, 16, 35, 12)
    risk = filing.sections["Item 1A. Risk Factors"]
    assert risk.startswith("Investing in our common stock involves risk.")
    assert "Unresolved Staff Comments" not in risk
    mda = next(v for k, v in filing.sections.items() if k.startswith("Item 7. Management"))
    assert "$3,412.5 million" in mda and "8.4%" in mda
    assert "Table of contents".lower() not in mda.lower()
    # Hidden inline-XBRL header and the exhibit are not part of the text.
    assert all("AmendmentFlag" not in v and "GmbH" not in v for v in filing.sections.values())


def test_8k_items_and_fallback_public_time() -> None:
    filing = parse_submission(EIGHT_K, "ACME")
    assert filing.form == "8-K"
    assert list(filing.sections) == [
        "Item 2.02. Results of Operations and Financial Condition",
        "Item 9.01. Financial Statements and Exhibits",
    ]
    assert "$861.0 million" in filing.sections["Item 2.02. Results of Operations and Financial Condition"]
    # No ACCEPTANCE-DATETIME: public at 17:30 New York on the filing date, i.e. after that close.
    assert filing.filed_at.astimezone(NEW_YORK).replace(tzinfo=None) == dt.datetime(2024, 4, 25, 17, 30)


def test_html_to_text_unescapes_and_drops_markup() -> None:
    assert html_to_text("<p>A&#160;&amp;&nbsp;B</p><script>x()</script><div>C</div>") == "A & B\nC"


def test_text_without_item_headings_is_kept_whole() -> None:
    assert split_sections("Just an exhibit.", "8-K") == {"Full text": "Just an exhibit."}


def test_header_without_accession_is_a_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "full-submission.txt"
    bad.write_text(TEN_K.read_text().replace("ACCESSION NUMBER:", "ACCESSION NUM:"))
    with pytest.raises(DataError, match="ACCESSION NUMBER"):
        parse_submission(bad, "ACME")


def test_load_reads_cached_folder_without_network(tmp_path: Path) -> None:
    shutil.copytree(EDGAR, tmp_path / "edgar")
    config = EdgarConfig(forms=["10-K", "8-K"])
    filings = load_edgar_filings(config, ["ACME"], tmp_path, offline=True)
    assert sorted(f.form for f in filings) == ["10-K", "8-K"]
    only_2024_q2 = EdgarConfig(forms=["10-K", "8-K"], after=dt.date(2024, 3, 1))
    assert [f.form for f in load_edgar_filings(only_2024_q2, ["ACME"], tmp_path, offline=True)] == ["8-K"]


def test_missing_filings_offline_say_what_to_fetch(tmp_path: Path) -> None:
    shutil.copytree(EDGAR, tmp_path / "edgar")
    with pytest.raises(DataUnavailableError) as info:
        load_edgar_filings(EdgarConfig(forms=["10-Q"]), ["ACME", "BOLT"], tmp_path, offline=True)
    message = str(info.value)
    assert "ACME 10-Q" in message and "BOLT 10-Q" in message
    assert "python -m env.sources.edgar" in message
