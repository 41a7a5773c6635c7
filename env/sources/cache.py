"""On-disk dataset cache: what a source fetched or generated, keyed by a hash of its config.

Layout of one entry, ``<cache_dir>/datasets/<kind>-<key>/``::

    manifest.json          config, tickers, counts, notes (written last: its presence marks a complete entry)
    bars/<TICKER>.parquet  OHLCV with a ``date`` index
    news.jsonl filings.jsonl macro.jsonl   one record per line (pydantic JSON)
    truth.json truth_regimes.parquet       ground truth of synthetic data (absent for real data)

An entry is written to a temporary folder and renamed into place, so a crash never leaves a
half-written entry that looks complete. A file that cannot be read raises ``DataError`` naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ValidationError

from env.errors import DataError
from env.market import GroundTruth, MarketData
from env.records import Filing, MacroObservation, NewsItem

CACHE_FORMAT = 1
"""Bumped whenever the layout or a generator's output changes, so old entries are not reused."""

_R = TypeVar("_R", bound=BaseModel)


def config_key(config: BaseModel, *salt: str) -> str:
    """A short stable hash of a config (plus ``salt``, e.g. input-file digests) naming its cache entry."""
    payload = json.dumps([CACHE_FORMAT, config.model_dump(mode="json"), list(salt)], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, so a cache keyed on a CSV path notices when the file changes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame to parquet atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp)
    os.replace(tmp, path)


def read_parquet(path: Path, what: str) -> pd.DataFrame:
    """Read a cached parquet file; a corrupt file raises ``DataError`` naming it and how to recover."""
    try:
        return pd.read_parquet(path)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise DataError(
            f"{path}: cached {what} is corrupt or unreadable ({exc}); delete the file to fetch/generate it again"
        ) from exc


def _write_jsonl(path: Path, records: Iterable[BaseModel]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.model_dump_json())
            handle.write("\n")


def _read_jsonl(path: Path, model: type[_R]) -> list[_R]:
    out: list[_R] = []
    try:
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    out.append(model.model_validate_json(line))
                except ValidationError as exc:
                    raise DataError(
                        f"{path}: line {line_no} is not a valid {model.__name__} record ({exc.error_count()} "
                        f"error(s): {exc.errors()[0]['msg']}); the cache is corrupt: delete {path.parent} to rebuild it"
                    ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read cached {model.__name__} records ({exc})") from exc
    return out


class DatasetCache:
    """One cache entry for one source config. ``load()`` returns the stored ``MarketData``."""

    def __init__(self, cache_dir: Path, kind: str, key: str) -> None:
        self.root = Path(cache_dir) / "datasets" / f"{kind}-{key}"
        self.kind = kind

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def manifest(self) -> dict[str, Any]:
        """The entry's manifest (config, tickers, counts, notes such as skipped rows)."""
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(
                f"{self.manifest_path}: cache manifest is corrupt ({exc}); delete {self.root} to rebuild it"
            ) from exc
        if not isinstance(manifest, dict) or not isinstance(manifest.get("tickers"), list):
            raise DataError(f"{self.manifest_path}: cache manifest lacks 'tickers'; delete {self.root} to rebuild it")
        return manifest

    def save(self, data: MarketData, config: BaseModel, notes: dict[str, Any] | None = None) -> None:
        """Store ``data`` (and its ground truth) for offline replay. An existing entry is kept as is."""
        if self.exists():
            return
        tmp = self.root.with_name(f".{self.root.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "bars").mkdir(parents=True)
        for ticker in data.tickers:
            data.bars[ticker].to_parquet(tmp / "bars" / f"{ticker}.parquet")
        _write_jsonl(tmp / "news.jsonl", data.news)
        _write_jsonl(tmp / "filings.jsonl", data.filings)
        _write_jsonl(tmp / "macro.jsonl", data.macro)
        truth = data.truth
        if truth is not None:
            pd.DataFrame({t: s for t, s in truth.regimes.items()}).to_parquet(tmp / "truth_regimes.parquet")
            (tmp / "truth.json").write_text(
                json.dumps({"item_sentiment": truth.item_sentiment, "extra": truth.extra}, sort_keys=True),
                encoding="utf-8",
            )
        manifest = {
            "format": CACHE_FORMAT,
            "kind": self.kind,
            "origin": data.origin,
            "config": config.model_dump(mode="json"),
            "tickers": list(data.tickers),
            "sessions": len(data),
            "first": str(data.dates[0]),
            "last": str(data.dates[-1]),
            "counts": {"news": len(data.news), "filings": len(data.filings), "macro": len(data.macro)},
            "notes": notes or {},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        self.root.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, self.root)
        except OSError:
            # Another process stored the same entry first; theirs is equivalent, so drop ours.
            shutil.rmtree(tmp, ignore_errors=True)

    def load(self) -> MarketData:
        """Rebuild the stored ``MarketData``; any unreadable file raises ``DataError`` naming it."""
        manifest = self.manifest()
        bars = {t: read_parquet(self.root / "bars" / f"{t}.parquet", f"bars of {t}") for t in manifest["tickers"]}
        truth = None
        truth_path = self.root / "truth.json"
        if truth_path.exists():
            try:
                payload = json.loads(truth_path.read_text(encoding="utf-8"))
                item_sentiment = {str(k): float(v) for k, v in payload["item_sentiment"].items()}
                extra = payload["extra"]
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{truth_path}: cached ground truth is corrupt ({exc}); delete {self.root}") from exc
            regimes = read_parquet(self.root / "truth_regimes.parquet", "regimes")
            truth = GroundTruth(
                regimes={t: regimes[t].rename(t) for t in regimes.columns},
                item_sentiment=item_sentiment,
                extra=extra,
            )
        return MarketData(
            bars,
            news=_read_jsonl(self.root / "news.jsonl", NewsItem),
            filings=_read_jsonl(self.root / "filings.jsonl", Filing),
            macro=_read_jsonl(self.root / "macro.jsonl", MacroObservation),
            truth=truth,
            origin=f"{manifest.get('origin', self.kind)} (cache {self.root})",
        )
