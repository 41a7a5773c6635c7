"""reward: release the reward parts maturing today and feed them back to the memories the
decisions used; release the reward adapter's labels and turn them into training examples."""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable
from pathlib import Path

from agents.analysts import news_text
from agents.deps import Deps
from agents.nodes.common import trace
from agents.state import Example, MaturedPart, NodeName, RunState
from env.market import MarketView
from rewards.config import RewardConfig
from rewards.momentum import DecisionRecord, RewardTracker


class FeedbackJournal:
    """Keys of memory-feedback batches already applied (one per session), appended and fsynced one per line.

    Feedback changes importance additively, so applying it twice is not idempotent; a reward node
    re-run after a crash skips the events this journal already holds.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: set[str] = set()
        if path.exists():
            self.keys = {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}

    def apply_once(self, key: str, action: Callable[[], list]) -> list:
        if key in self.keys:
            return []
        out = action()
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(key + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.keys.add(key)
        return out


def label_config(deps: Deps) -> RewardConfig:
    """The adapter's label: the unpenalised, normalised momentum over the label horizons."""
    return RewardConfig(horizons_days=deps.config.episode.adapter_label_horizons_days, lam=0.0, normalize=True)


def make_reward_node(deps: Deps) -> Callable[[RunState], dict]:
    ep = deps.config.episode
    label_cfg = label_config(deps)
    feedback = FeedbackJournal(deps.run_dir / "feedback_journal.txt")
    keep_for_reflection = ep.reflection

    def node(state: RunState) -> dict:
        started = time.perf_counter()
        view = deps.data.view(state.day)
        tracker = RewardTracker.from_state_dict(deps.config.rewards, state.rewards) if state.rewards else RewardTracker(deps.config.rewards)
        closes = {t: view.close(t) for t in view.tickers}
        matured = tracker.release(state.day, closes)
        decisions = deps.journal.decisions([c.decision_id for c in matured])
        buffer = list(state.matured_buffer)
        batch = []
        for comp in matured:
            dec = decisions.get(comp.decision_id)
            if dec is None:
                continue
            if dec.memory_ids and deps.config.memory.enabled:
                batch.append((dec.memory_ids, comp.reward_part))
            if keep_for_reflection:
                buffer.append(
                    MaturedPart(
                        decision_id=comp.decision_id, ticker=comp.ticker, decision_index=comp.decision_index,
                        horizon=comp.horizon, reward_part=comp.reward_part, partial_reward=comp.partial_reward,
                        momentum_part=comp.momentum_part, action=dec.action, complete=comp.complete,
                    )
                )
        # All of today's reward parts in one memory write, applied once (keyed by session).
        moves = feedback.apply_once(f"session:{state.day}", lambda: deps.memory.feedback_many(batch, as_of=view.decision_time)) if batch else []
        # The adapter's labels: the short-horizon momentum reward of a unit long position after each
        # session's news, released by its own tracker as it matures.
        labels = RewardTracker.from_state_dict(label_cfg, state.label_rewards) if state.label_rewards else RewardTracker(label_cfg)
        released: list[Example] = []
        if ep.bootstrap_from_history and state.day == state.first_day:
            released = history_examples(deps, view, label_cfg.horizons_days)
        for comp in labels.release(state.day, closes):
            if comp.complete:
                pairs = deps.journal.label_texts(comp.decision_id)
                released += [Example(text=t, outcome=comp.partial_reward, index=comp.decision_index, item_id=k) for k, t in pairs]
        deps.journal.add_examples(state.day, released)
        chars = deps.config.analysts.max_item_chars
        for ticker in view.tickers:
            pairs = [(n.id, news_text(n, chars)) for n in view.news(ticker, since=state.prev_day)]
            if pairs:
                key = f"{ticker}:{state.day}"
                labels.record(DecisionRecord(key, ticker, state.day, closes[ticker], direction=1.0, quantity=0.0))
                deps.journal.add_label_texts(key, pairs)
        trace(
            deps, state, NodeName.REWARD,
            matured=[c.__dict__ for c in matured], moves=[m.model_dump(mode="json") for m in moves],
            examples_released=len(released), latency_s=time.perf_counter() - started,
        )
        return {
            "rewards": tracker.state_dict(), "matured_buffer": buffer,
            "label_rewards": labels.state_dict(),
        }

    node.__name__ = NodeName.REWARD.value
    return node


def history_examples(deps: Deps, view: MarketView, horizons: tuple[int, ...]) -> list[Example]:
    """Examples from news public before the first decision whose label horizons matured by then.

    Each item counts from the first session whose close is at or after its publication (when it
    became usable); its label is sum_h (close[s+h] - close[s]) / close[s]. Only prices up to today
    are read (through the view), so this is point-in-time safe.
    """
    chars = deps.config.analysts.max_item_chars
    closes_utc = deps.data.closes_utc[: view.index + 1]
    out: list[Example] = []
    for ticker in view.tickers:
        closes = view.series(ticker, "close")
        for n in view.news(ticker):
            s = bisect.bisect_left(closes_utc, n.public_at)
            if s + max(horizons) > view.index:
                continue
            outcome = sum(closes[s + h] - closes[s] for h in horizons) / closes[s]
            out.append(Example(text=news_text(n, chars), outcome=float(outcome), index=s, item_id=n.id))
    out.sort(key=lambda e: e.index)
    return out
