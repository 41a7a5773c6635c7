"""The run's histories, kept outside the checkpointed graph state: ``<run_dir>/journal.sqlite``.

The graph state holds only what the next session needs, so a checkpoint's size does not grow with
the run. Everything that does grow is written here by the node that produced it: the broker's
orders, fills, marked sessions and position changes per account (train / test), the reward
adapter's training examples and the news texts waiting for their labels, the decisions waiting
for their rewards, and the reflection lessons.

Every row has a deterministic key (an order id, a session, a decision id) and is written with
``INSERT OR REPLACE``. After a crash LangGraph re-runs the interrupted node from its start; it
rewrites the same rows with the same values, so a resumed run's journal equals an uninterrupted
one's. Readers select by session (``released_day <= day``), never "everything in the file".
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

from agents.state import Action, Example, PendingDecision
from env.broker import HistoryRows, Ledger
from env.market import MarketData

JOURNAL_FILE = "journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (account TEXT, order_id INTEGER, record TEXT, PRIMARY KEY (account, order_id));
CREATE TABLE IF NOT EXISTS fills (account TEXT, order_id INTEGER, row TEXT, PRIMARY KEY (account, order_id));
CREATE TABLE IF NOT EXISTS days (account TEXT, idx INTEGER, row TEXT, PRIMARY KEY (account, idx));
CREATE TABLE IF NOT EXISTS positions (account TEXT, idx INTEGER, ticker TEXT, shares REAL, PRIMARY KEY (account, idx, ticker));
CREATE TABLE IF NOT EXISTS examples (released_day INTEGER, seq INTEGER, text TEXT, outcome REAL, idx INTEGER, item_id TEXT,
                                     PRIMARY KEY (released_day, seq));
CREATE TABLE IF NOT EXISTS judgements (item_id TEXT PRIMARY KEY, analyst TEXT, ticker TEXT, day INTEGER, score REAL);
CREATE TABLE IF NOT EXISTS decisions (decision_id TEXT PRIMARY KEY, ticker TEXT, idx INTEGER, action TEXT, memory_ids TEXT);
CREATE TABLE IF NOT EXISTS label_texts (label_id TEXT PRIMARY KEY, texts TEXT);
CREATE TABLE IF NOT EXISTS lessons (day INTEGER, ticker TEXT, text TEXT, PRIMARY KEY (day, ticker));
"""


class Account(StrEnum):
    """The two broker accounts of a run: training, then a fresh one for the out-of-sample test."""

    TRAIN = "train"
    TEST = "test"


class RunJournal:
    """Idempotent, session-keyed history files of one run (see the module docstring)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / JOURNAL_FILE
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()  # parallel analyst nodes may share the journal

    def close(self) -> None:
        self._conn.close()

    def _write(self, statements: Sequence[tuple[str, Sequence[tuple]]]) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                for sql, rows in statements:
                    if rows:
                        self._conn.executemany(sql, rows)
            except sqlite3.Error:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- the broker's ledger -------------------------------------------------------------
    def write_broker(self, account: Account, rows: HistoryRows) -> None:
        """Store a broker's rows (``Broker.history()``); rewriting the same rows changes nothing."""
        a = account.value
        self._write(
            [
                ("INSERT OR REPLACE INTO orders VALUES (?, ?, ?)", [(a, int(r["order_id"]), json.dumps(r)) for r in rows.orders]),
                ("INSERT OR REPLACE INTO fills VALUES (?, ?, ?)", [(a, int(f[1]), json.dumps(list(f))) for f in rows.fills]),
                ("INSERT OR REPLACE INTO days VALUES (?, ?, ?)", [(a, int(d[0]), json.dumps(list(d))) for d in rows.days]),
                ("INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?)", [(a, int(c[0]), c[1], float(c[2])) for c in rows.pos_changes]),
            ]
        )

    def broker_rows(self, account: Account, *, up_to: int | None = None) -> HistoryRows:
        """The stored rows of ``account`` (sessions ``<= up_to`` when given), in time order."""
        a, last = account.value, (2**62 if up_to is None else up_to)
        days = [tuple(json.loads(r)) for (r,) in self._read("SELECT row FROM days WHERE account = ? AND idx <= ? ORDER BY idx", (a, last))]
        fills = [tuple(json.loads(r)) for (r,) in self._read("SELECT row FROM fills WHERE account = ? ORDER BY order_id", (a,))]
        fills = [f for f in fills if f[0] <= last]
        orders = [json.loads(r) for (r,) in self._read("SELECT record FROM orders WHERE account = ? ORDER BY order_id", (a,))]
        orders = [o for o in orders if o["decided_index"] <= last]
        changes = self._read("SELECT idx, ticker, shares FROM positions WHERE account = ? AND idx <= ? ORDER BY idx", (a, last))
        return HistoryRows(orders, fills, days, [tuple(c) for c in changes])

    def ledger(self, data: MarketData, account: Account) -> Ledger:
        """The account's orders / fills / equity / positions tables, as ``Broker.ledger`` gives them."""
        return Ledger(data, lambda: self.broker_rows(account))

    # -- the reward adapter's examples ---------------------------------------------------
    def add_examples(self, released_day: int, examples: Sequence[Example]) -> None:
        """Examples whose label matured at ``released_day`` (replaces that session's examples)."""
        self._write(
            [
                ("DELETE FROM examples WHERE released_day = ?", [(released_day,)]),
                (
                    "INSERT OR REPLACE INTO examples VALUES (?, ?, ?, ?, ?, ?)",
                    [(released_day, k, e.text, e.outcome, e.index, e.item_id) for k, e in enumerate(examples)],
                ),
            ]
        )

    def examples(self, up_to_day: int) -> list[Example]:
        """Every example released at or before ``up_to_day``, in release order."""
        rows = self._read(
            "SELECT text, outcome, idx, item_id FROM examples WHERE released_day <= ? ORDER BY released_day, seq", (up_to_day,)
        )
        return [Example(text=t, outcome=o, index=i, item_id=k or "") for t, o, i, k in rows]

    def count_examples(self, up_to_day: int) -> int:
        return int(self._read("SELECT COUNT(*) FROM examples WHERE released_day <= ?", (up_to_day,))[0][0])

    # -- news texts waiting for their label ---------------------------------------------
    def add_label_texts(self, label_id: str, items: Sequence[tuple[str, str]]) -> None:
        """The (item id, text) pairs of one session's news, waiting for their label."""
        self._write([("INSERT OR REPLACE INTO label_texts VALUES (?, ?)", [(label_id, json.dumps([list(i) for i in items]))])])

    def label_texts(self, label_id: str) -> list[tuple[str, str]]:
        rows = self._read("SELECT texts FROM label_texts WHERE label_id = ?", (label_id,))
        return [(str(k), str(t)) for k, t in json.loads(rows[0][0])] if rows else []

    # -- the analysts' judgements of news items --------------------------------------------
    def add_judgements(self, rows: Sequence[tuple[str, str, str, int, float]]) -> None:
        """(item id, analyst, ticker, session, impact score) per judged item; a re-judged item keeps one row."""
        self._write([("INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?, ?)", list(rows))])

    def judgement_scores(self, item_ids: Sequence[str], up_to_day: int) -> dict[str, float]:
        """The impact score of each judged item among ``item_ids`` (judged at or before ``up_to_day``)."""
        keys = list(dict.fromkeys(k for k in item_ids if k))
        out: dict[str, float] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self._read(
                f"SELECT item_id, score FROM judgements WHERE day <= ? AND item_id IN ({','.join('?' * len(chunk))})",
                (up_to_day, *chunk),
            )
            out.update({k: float(v) for k, v in rows})
        return out

    # -- decisions waiting for their rewards ---------------------------------------------
    def add_decisions(self, decisions: Sequence[tuple[str, PendingDecision]]) -> None:
        self._write(
            [
                (
                    "INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?, ?)",
                    [(key, d.ticker, d.index, d.action.value, json.dumps(d.memory_ids)) for key, d in decisions],
                )
            ]
        )

    def decisions(self, decision_ids: Sequence[str]) -> dict[str, PendingDecision]:
        """The stored decisions among ``decision_ids`` (missing ids are absent from the result)."""
        keys = list(dict.fromkeys(decision_ids))
        if not keys:
            return {}
        rows = self._read(
            f"SELECT decision_id, ticker, idx, action, memory_ids FROM decisions WHERE decision_id IN ({','.join('?' * len(keys))})",
            tuple(keys),
        )
        found = {key: PendingDecision(ticker=t, index=i, action=Action(a), memory_ids=json.loads(m)) for key, t, i, a, m in rows}
        return {key: found[key] for key in keys if key in found}

    # -- reflection lessons ----------------------------------------------------------------
    def add_lesson(self, day: int, ticker: str, text: str) -> None:
        self._write([("INSERT OR REPLACE INTO lessons VALUES (?, ?, ?)", [(day, ticker, text)])])

    def lessons(self, up_to_day: int, last: int | None = None) -> list[str]:
        """Lessons written at or before ``up_to_day``, oldest first (only the ``last`` ones if given)."""
        rows = [t for (t,) in self._read("SELECT text FROM lessons WHERE day <= ? ORDER BY day, ticker", (up_to_day,))]
        return rows[-last:] if last else rows

