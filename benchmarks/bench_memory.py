"""Memory store latency: add, query (exact and chroma modes), step_day, reopen; embedding timed apart.

Storage timings use precomputed random unit vectors (served by a lookup embedding function), so they
exclude the model; the real all-MiniLM-L6-v2 embedding cost is measured separately on a sample.
Target: exact-mode query p50 <= 10 ms at 100k items, excluding the query's embedding.

    .venv/bin/python benchmarks/bench_memory.py [--sizes 1000 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from env.records import SourceType
from memory import MARKET_TICKER, MemoryConfig, MemoryItem, make_embedding_function, open_memory

START = dt.datetime(2022, 1, 3, 21, tzinfo=dt.timezone.utc)
SOURCES = [SourceType.NEWS] * 6 + [SourceType.FILING_8K, SourceType.MACRO, SourceType.FILING_10Q, SourceType.REFLECTION]
TICKERS = [f"T{i:02d}" for i in range(20)]


def _items(n: int, rng: np.random.Generator) -> list[MemoryItem]:
    days = np.sort(rng.uniform(0, 730, n))
    items = []
    for i in range(n):
        source = SOURCES[i % len(SOURCES)]
        ticker = MARKET_TICKER if source is SourceType.MACRO else TICKERS[int(rng.integers(len(TICKERS)))]
        items.append(
            MemoryItem(
                text=f"synthetic memory {i} about {ticker} ({source})",
                ticker=ticker,
                source_type=source,
                source_id=str(i),
                public_at=START + dt.timedelta(days=float(days[i])),
                importance=float(rng.uniform(20, 90)),
            )
        )
    return items


def _ms(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples) * 1000, float(np.percentile(samples, 95)) * 1000


def bench_size(n: int, queries: int, rng: np.random.Generator) -> list[tuple]:
    items = _items(n, rng)
    vectors = rng.standard_normal((n, 384)).astype(np.float32)
    lookup = {item.text: vectors[i] for i, item in enumerate(items)}

    def precomputed(texts: list[str]) -> list[np.ndarray]:
        return [lookup[text] for text in texts]

    as_of = START + dt.timedelta(days=731)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        config = MemoryConfig(batch_size=2000)
        store = open_memory(config, Path(tmp), embedding_function=precomputed)
        t0 = time.perf_counter()
        store.add(items, as_of)
        add_s = time.perf_counter() - t0
        rows.append((n, "add (storage only)", f"{add_s:.1f} s total", f"{add_s / n * 1e6:.0f} us/item"))
        probes = rng.standard_normal((queries, 384)).astype(np.float32)
        for label, ticker in (("query exact, ticker", "T03"), ("query exact, all tickers", None)):
            times = []
            for q in probes:
                t0 = time.perf_counter()
                store.query("", ticker=ticker, as_of=as_of, query_embedding=q)
                times.append(time.perf_counter() - t0)
            p50, p95 = _ms(times)
            rows.append((n, label, f"p50 {p50:.2f} ms", f"p95 {p95:.2f} ms"))
        t0 = time.perf_counter()
        moves = store.step_day(as_of)
        rows.append((n, "step_day", f"{(time.perf_counter() - t0):.2f} s", f"{len(moves)} moves"))
        store.close()

        t0 = time.perf_counter()
        chroma = open_memory(config.model_copy(update={"retrieval": "chroma"}), Path(tmp), embedding_function=precomputed)
        rows.append((n, "reopen (index rebuild)", f"{time.perf_counter() - t0:.2f} s", f"{chroma.count()} items"))
        times = []
        for q in probes[: max(5, queries // 20)]:
            t0 = time.perf_counter()
            chroma.query("", ticker="T03", as_of=as_of - dt.timedelta(days=100), query_embedding=q)
            times.append(time.perf_counter() - t0)
        p50, p95 = _ms(times)
        rows.append((n, "query chroma where, ticker", f"p50 {p50:.2f} ms", f"p95 {p95:.2f} ms"))
        chroma.close()
    return rows


def bench_embedding(sample: int) -> list[tuple]:
    embed = make_embedding_function(MemoryConfig())
    texts = [f"Company {i} reports quarterly results above analyst expectations on strong demand" for i in range(sample)]
    embed(texts[:8])  # warm-up
    t0 = time.perf_counter()
    embed(texts)
    batch_s = time.perf_counter() - t0
    singles = []
    for text in texts[:20]:
        t0 = time.perf_counter()
        embed([text])
        singles.append(time.perf_counter() - t0)
    p50, p95 = _ms(singles)
    return [
        (sample, "embed batch (MiniLM, CPU)", f"{batch_s / sample * 1000:.2f} ms/text", f"{batch_s:.2f} s total"),
        (1, "embed one query", f"p50 {p50:.2f} ms", f"p95 {p95:.2f} ms"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embed-sample", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = bench_embedding(args.embed_sample)
    for n in args.sizes:
        rows.extend(bench_size(n, args.queries, rng))
    print(f"{'items':>8}  {'operation':<28} {'value':<18} {'detail'}")
    for n, label, value, detail in rows:
        print(f"{n:>8}  {label:<28} {value:<18} {detail}")


if __name__ == "__main__":
    main()
