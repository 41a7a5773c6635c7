"""SEC filings via sec-edgar-downloader, parsed into ``Filing`` records with named sections.

Downloads land in ``<cache_dir>/edgar/sec-edgar-filings/<TICKER>/<FORM>/<ACCESSION>/full-submission.txt``
(the downloader's own layout). A ticker/form already in that folder is read from disk without
touching the network, so a run replays offline. When the SEC cannot be reached (the downloader
fails in its constructor offline) and nothing is cached, ``DataUnavailableError`` says what to fetch.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from pathlib import Path

from env.config import EdgarConfig
from env.errors import DataError, DataUnavailableError
from env.records import NEW_YORK, Filing

SUBMISSION_FILE = "full-submission.txt"
# Without an acceptance time, a filing counts as public at 17:30 New York on its filing date:
# after EDGAR's 17:30 cut-off, so never usable before that day's close.
_FALLBACK_TIME = dt.time(17, 30)

_HEADER_FIELDS = {
    "accession": r"ACCESSION NUMBER:\s*(\S+)",
    "form": r"CONFORMED SUBMISSION TYPE:\s*(\S+)",
    "period": r"CONFORMED PERIOD OF REPORT:\s*(\d{8})",
    "filed": r"FILED AS OF DATE:\s*(\d{8})",
    "cik": r"CENTRAL INDEX KEY:\s*(\d+)",
    "company": r"COMPANY CONFORMED NAME:\s*(.+)",
}
_ACCEPTANCE = re.compile(r"<ACCEPTANCE-DATETIME>\s*(\d{14})")
_DOCUMENT = re.compile(r"<DOCUMENT>(.*?)</DOCUMENT>", re.S | re.I)
_DOC_TYPE = re.compile(r"<TYPE>\s*([^\s<]+)", re.I)
_DOC_TEXT = re.compile(r"<TEXT>(.*?)</TEXT>", re.S | re.I)
_DROP_BLOCKS = re.compile(r"<(script|style|ix:header|head)\b.*?</\1\s*>", re.S | re.I)
_BLOCK_TAGS = re.compile(r"</?(p|div|br|tr|li|h[1-6]|table|section)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]+>")
_HEADING = re.compile(r"(?im)^\s*item\s+(\d\.\d{2}|\d{1,2}[a-c]?)\s*[\.:\-\u2013\u2014]?\s*(.{0,120})$")

PERIODIC_SECTIONS = {
    "10-K": {
        "1": "Item 1. Business",
        "1A": "Item 1A. Risk Factors",
        "7": "Item 7. Management's Discussion and Analysis of Financial Condition and Results of Operations",
        "7A": "Item 7A. Quantitative and Qualitative Disclosures About Market Risk",
    },
    "10-Q": {
        "2": "Item 2. Management's Discussion and Analysis of Financial Condition and Results of Operations",
        "1A": "Item 1A. Risk Factors",
        "3": "Item 3. Quantitative and Qualitative Disclosures About Market Risk",
    },
}
EIGHT_K_ITEMS = {
    "1.01": "Entry into a Material Definitive Agreement",
    "1.02": "Termination of a Material Definitive Agreement",
    "2.01": "Completion of Acquisition or Disposition of Assets",
    "2.02": "Results of Operations and Financial Condition",
    "2.05": "Costs Associated with Exit or Disposal Activities",
    "2.06": "Material Impairments",
    "3.01": "Notice of Delisting or Failure to Satisfy a Continued Listing Rule",
    "4.02": "Non-Reliance on Previously Issued Financial Statements",
    "5.02": "Departure of Directors or Certain Officers; Election of Directors; Appointment of Certain Officers",
    "5.07": "Submission of Matters to a Vote of Security Holders",
    "7.01": "Regulation FD Disclosure",
    "8.01": "Other Events",
    "9.01": "Financial Statements and Exhibits",
}


def html_to_text(markup: str) -> str:
    """Plain text of an EDGAR HTML/iXBRL document: hidden XBRL and scripts dropped, one block per line."""
    text = _DROP_BLOCKS.sub(" ", markup)
    text = _BLOCK_TAGS.sub("\n", text)
    text = html.unescape(_TAG.sub(" ", text)).replace("\xa0", " ")
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def split_sections(text: str, form: str) -> dict[str, str]:
    """Named sections of a filing's text.

    Each ``Item N`` heading starts a section that runs to the next heading. A heading also
    appears in the table of contents, where its "section" is a line or two; keeping the longest
    span per item picks the body over the contents entry.
    """
    heads = [(m.start(), m.end(), m.group(1).upper()) for m in _HEADING.finditer(text)]
    best: dict[str, str] = {}
    for pos, (start, end, item) in enumerate(heads):
        stop = heads[pos + 1][0] if pos + 1 < len(heads) else len(text)
        body = text[end:stop].strip()
        if len(body) > len(best.get(item, "")):
            best[item] = body
    base = form.upper().split("/")[0]
    sections: dict[str, str] = {}
    if base in PERIODIC_SECTIONS:
        for item, name in PERIODIC_SECTIONS[base].items():
            if best.get(item):
                sections[name] = best[item]
    elif base == "8-K":
        for item in sorted(k for k in best if "." in k):
            sections[f"Item {item}. {EIGHT_K_ITEMS.get(item, 'Other')}"] = best[item]
    if not sections and text.strip():
        # No recognised item headings (e.g. an exhibit-only or scanned filing): keep the whole text, labelled.
        sections["Full text"] = text.strip()
    return sections


def _header_date(value: str, path: Path, field: str) -> dt.date:
    try:
        return dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError as exc:
        raise DataError(f"{path}: SEC header field {field} has an invalid date {value!r}") from exc


def parse_submission(path: str | Path, ticker: str) -> Filing:
    """Parse one EDGAR ``full-submission.txt`` into a ``Filing``.

    Reads the SEC header (ACCESSION NUMBER, CONFORMED SUBMISSION TYPE, CONFORMED PERIOD OF
    REPORT, FILED AS OF DATE, ACCEPTANCE-DATETIME), takes the main document (the ``<DOCUMENT>``
    whose ``<TYPE>`` is the form) and splits its text into sections. ``filed_at`` (= public time)
    is the acceptance datetime in New York, else the filing date at 17:30 New York.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read SEC submission ({exc})") from exc
    header_end = raw.find("</SEC-HEADER>")
    header = raw[: header_end if header_end >= 0 else 5000]
    fields: dict[str, str] = {}
    for name, pattern in _HEADER_FIELDS.items():
        match = re.search(pattern, header)
        if match:
            fields[name] = match.group(1).strip()
    for required, label in (("accession", "ACCESSION NUMBER"), ("form", "CONFORMED SUBMISSION TYPE"), ("filed", "FILED AS OF DATE")):
        if required not in fields:
            raise DataError(f"{path}: SEC header lacks {label}; is this a full-submission.txt from EDGAR?")
    form = fields["form"].upper()
    accepted = _ACCEPTANCE.search(header)
    if accepted:
        try:
            local = dt.datetime.strptime(accepted.group(1), "%Y%m%d%H%M%S")
        except ValueError as exc:
            raise DataError(f"{path}: ACCEPTANCE-DATETIME {accepted.group(1)!r} is not a valid timestamp") from exc
    else:
        local = dt.datetime.combine(_header_date(fields["filed"], path, "FILED AS OF DATE"), _FALLBACK_TIME)
    documents = _DOCUMENT.findall(raw)
    if not documents:
        raise DataError(f"{path}: no <DOCUMENT> block after the SEC header")
    main = next((d for d in documents if (m := _DOC_TYPE.search(d)) and m.group(1).upper() == form), documents[0])
    body = _DOC_TEXT.search(main)
    text = html_to_text(body.group(1) if body else main)
    period = _header_date(fields["period"], path, "CONFORMED PERIOD OF REPORT") if "period" in fields else None
    accession = fields["accession"]
    cik = str(int(fields["cik"])) if "cik" in fields else ""
    url = f"https://www.sec.gov/Archives/edgar/data/{cik}/{accession.replace('-', '')}/{accession}.txt" if cik else ""
    return Filing(
        id=f"edgar-{accession}",
        ticker=ticker,
        form=form,
        filed_at=local.replace(tzinfo=NEW_YORK),
        period=period,
        sections=split_sections(text, form),
        url=url,
    )


def edgar_folder(cache_dir: Path) -> Path:
    """Where sec-edgar-downloader writes (and tradegraph reads) filings."""
    return Path(cache_dir) / "edgar"


def cached_submissions(cache_dir: Path, ticker: str, form: str) -> list[Path]:
    """``full-submission.txt`` files already downloaded for one ticker and form, sorted by accession."""
    folder = edgar_folder(cache_dir) / "sec-edgar-filings" / ticker / form
    return sorted(folder.glob(f"*/{SUBMISSION_FILE}"))


def _download(config: EdgarConfig, cache_dir: Path, wanted: Sequence[tuple[str, str]]) -> list[str]:
    """Fetch ``(ticker, form)`` pairs with sec-edgar-downloader; return the reasons for any that failed."""
    import requests
    from sec_edgar_downloader import Downloader

    try:
        # The constructor fetches the SEC ticker -> CIK map, so offline it fails right here.
        downloader = Downloader(config.company, config.email, edgar_folder(cache_dir))
    except requests.exceptions.RequestException as exc:
        return [f"SEC EDGAR unreachable ({type(exc).__name__}: {exc})"]
    failures = []
    for ticker, form in wanted:
        try:
            downloader.get(form, ticker, limit=config.limit, after=config.after, before=config.before, download_details=False)
        except requests.exceptions.RequestException as exc:
            failures.append(f"{ticker} {form}: {type(exc).__name__}: {exc}")
        except ValueError as exc:
            # sec-edgar-downloader raises ValueError for unknown tickers or bad dates: a config problem.
            raise DataError(f"SEC EDGAR rejected {ticker} {form}: {exc}") from exc
    return failures


def load_edgar_filings(
    config: EdgarConfig, tickers: Sequence[str], cache_dir: Path, *, offline: bool = False
) -> list[Filing]:
    """Filings of ``config.forms`` for ``tickers``: from the cache folder, else downloaded into it.

    Filters by ``config.after`` / ``config.before`` on the filing date. Raises
    ``DataUnavailableError`` listing the missing ticker/form pairs and the command to fetch them
    when they are neither cached nor downloadable.
    """
    cache_dir = Path(cache_dir)
    wanted = [(t, f) for t in tickers for f in config.forms if not cached_submissions(cache_dir, t, f)]
    problems: list[str] = []
    if wanted and not offline:
        problems = _download(config, cache_dir, wanted)
    missing = [(t, f) for t, f in wanted if not cached_submissions(cache_dir, t, f)]
    # A form a company never filed legitimately yields nothing; only fail when the fetch itself failed.
    if missing and (offline or problems):
        pairs = ", ".join(f"{t} {f}" for t, f in missing)
        reason = "offline mode is on" if offline else "; ".join(problems[:3])
        raise DataUnavailableError(
            f"SEC filings not cached in {edgar_folder(cache_dir)} for: {pairs} ({reason}). Fetch them on a machine "
            f"with internet: python -m env.sources.edgar --cache-dir {cache_dir} --forms {' '.join(config.forms)} "
            f"--email YOUR@EMAIL {' '.join(sorted({t for t, _ in missing}))}, then copy the edgar/ folder here"
        )
    filings: list[Filing] = []
    for ticker in tickers:
        for form in config.forms:
            for path in cached_submissions(cache_dir, ticker, form):
                filing = parse_submission(path, ticker)
                day = filing.filed_at.astimezone(NEW_YORK).date()
                if (config.after and day < config.after) or (config.before and day > config.before):
                    continue
                filings.append(filing)
    return filings


def main(argv: Sequence[str] | None = None) -> int:
    """Download filings into a cache folder: ``python -m env.sources.edgar --cache-dir DIR --email E TICKER...``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("tickers", nargs="+")
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--forms", nargs="+", default=["10-K", "10-Q", "8-K"])
    parser.add_argument("--email", required=True)
    parser.add_argument("--company", default="tradegraph")
    parser.add_argument("--limit", type=int, default=8)
    args = parser.parse_args(argv)
    config = EdgarConfig(forms=args.forms, email=args.email, company=args.company, limit=args.limit)
    filings = load_edgar_filings(config, args.tickers, args.cache_dir)
    print(f"{len(filings)} filings in {edgar_folder(args.cache_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
