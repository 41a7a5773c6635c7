"""open_session, reward, reflect, execute, close_session and finish, each run on its own."""

from __future__ import annotations

from agents.journal import Account
from agents.memory_items import make_memory_item
from agents.nodes.close_session import make_close_session, route_after_close
from agents.nodes.execute import decision_id, make_execute_node
from agents.nodes.finish import make_finish_node
from agents.nodes.open_session import make_open_session
from agents.nodes.reflect import make_reflect_node
from agents.nodes.reward import make_reward_node
from agents.state import Action, DirectionDecision, MaturedPart, NodeName, Phase, SizedOrder
from env.broker import Broker


def _order(ticker: str, target: float, prev: float = 0.0, action: Action = Action.BUY) -> SizedOrder:
    return SizedOrder(ticker=ticker, action=action, prev_weight=prev, target_weight=target,
                      kelly_fraction=0.1, payoff_ratio=1.0, cvar=0.02)


def _decision(ticker: str, memory_ids: list[str]) -> DirectionDecision:
    return DirectionDecision(ticker=ticker, action=Action.BUY, probs={"buy": 0.8, "sell": 0.1, "hold": 0.1},
                             p_up=0.9, memory_ids=memory_ids)


def test_execute_then_open_fills_at_the_next_open_and_journals_the_history(kit):
    k = kit()
    day = k.state().day
    state = k.state(orders={"ACME": _order("ACME", 0.5)}, decisions={"ACME": _decision("ACME", ["m1", "m2"])})
    opened = make_open_session(k.deps)(state)
    state = state.model_copy(update={"broker": opened["broker"]})
    executed = make_execute_node(k.deps)(state)
    assert [p[2] for p in executed["broker"]["pending"]] == ["TargetWeightOrder"]
    # The decision and the memories it used are in the journal, keyed by its id.
    stored = k.deps.journal.decisions([decision_id("ACME", day)])
    assert stored[decision_id("ACME", day)].memory_ids == ["m1", "m2"]
    nxt = state.model_copy(update={"broker": executed["broker"], "day": day + 1, "prev_day": day})
    filled = make_open_session(k.deps)(nxt)
    fills = k.deps.journal.ledger(k.data, Account.TRAIN).fills
    assert len(fills) == 1 and fills.iloc[0]["index"] == day + 1
    slip = k.config.broker.slippage_bps / 1e4
    assert fills.iloc[0]["price"] == k.data.array("ACME", "open")[day + 1] * (1 + slip)  # the next open, plus slippage
    # The checkpointed broker keeps no history: no fills, one marked session.
    assert filled["broker"]["fills"] == [] and len(filled["broker"]["days"]) == 1
    assert Broker.weights_in(filled["broker"])["ACME"] > 0.45


def test_test_period_starts_with_a_fresh_account_and_the_training_ledger_kept(kit):
    k = kit()
    state = k.state()
    state = state.model_copy(update={"day": state.test_start, "prev_day": state.test_start - 1,
                                     "broker": Broker(k.data, k.config.broker).state_dict(history=False)})
    out = make_open_session(k.deps)(state)
    assert out["phase"] == Phase.TEST
    assert len(k.deps.journal.ledger(k.data, Account.TRAIN).equity) == 1
    assert len(k.deps.journal.ledger(k.data, Account.TEST).equity) == 1
    assert out["broker"]["cash"] == k.config.broker.initial_cash


def test_reward_releases_parts_and_labels_into_the_journal(kit):
    k = kit()
    state = k.state()
    first = state.day
    reward = make_reward_node(k.deps)
    out = reward(state)
    # At the first decision the warm-up's matured news becomes training examples.
    assert k.deps.journal.count_examples(first) > 0
    assert all(e.index + 3 <= first for e in k.deps.journal.examples(first))
    assert k.deps.journal.label_texts(f"ACME:{first}"), "today's news waits for its label"
    # A decision recorded today releases its 1-session part tomorrow.
    state = state.model_copy(update={**out, "orders": {"ACME": _order("ACME", 0.5)}, "decisions": {"ACME": _decision("ACME", [])}})
    opened = make_open_session(k.deps)(state)
    state = state.model_copy(update={"broker": opened["broker"]})
    state = state.model_copy(update=make_execute_node(k.deps)(state))
    nxt = state.model_copy(update={"day": first + 1, "prev_day": first})
    out = reward(nxt)
    parts = out["matured_buffer"]
    assert [(p.decision_id, p.horizon) for p in parts] == [(decision_id("ACME", first), 1)]
    closes = k.data.array("ACME", "close")
    assert parts[0].momentum_part == (closes[first + 1] - closes[first]) / closes[first]


def test_reward_keeps_no_parts_when_reflection_is_off(kit):
    k = kit(**{"episode.reflection": False})
    state = k.state()
    day = state.day
    state = state.model_copy(update=make_reward_node(k.deps)(state))
    state = state.model_copy(update={"orders": {"ACME": _order("ACME", 0.5)}, "decisions": {"ACME": _decision("ACME", [])}})
    state = state.model_copy(update={"broker": make_open_session(k.deps)(state)["broker"]})
    state = state.model_copy(update=make_execute_node(k.deps)(state))
    out = make_reward_node(k.deps)(state.model_copy(update={"day": day + 1, "prev_day": day}))
    assert out["matured_buffer"] == []


def test_reflection_cites_the_memories_of_completed_decisions_regression(kit):
    """The reflect node used to look memory ids up among the still-pending decisions, after the
    reward node had dropped the completed ones: the lesson lost the evidence it should cite."""
    k = kit()
    state = k.state()
    view = k.data.view(state.day)
    item = make_memory_item(
        text="ACME wins a record defence contract", ticker="ACME", source_type="news", source_id="n1", url="",
        event_date=view.date, public_at=view.decision_time, reason="r", relevance=0.9, impact="positive", impact_score=0.8,
    )
    memory_id = k.deps.memory.add([item], as_of=view.decision_time)[0]
    dec_day = state.day - 5
    from agents.state import PendingDecision

    k.deps.journal.add_decisions([(f"ACME:{dec_day}", PendingDecision(ticker="ACME", index=dec_day, action=Action.BUY, memory_ids=[memory_id]))])
    part = MaturedPart(decision_id=f"ACME:{dec_day}", ticker="ACME", decision_index=dec_day, horizon=1, reward_part=0.01,
                       partial_reward=0.01, momentum_part=0.01, action=Action.BUY, complete=True)
    day = state.first_day + k.config.episode.reflect_every_days
    out = make_reflect_node(k.deps)(state.model_copy(update={"day": day, "matured_buffer": [part]}))
    assert out["matured_buffer"] == []
    prompts = [c.messages[-1].content for c in k.llm.calls if c.agent == "reflection"]
    assert len(prompts) == 1 and "record defence contract" in prompts[0]
    assert k.deps.journal.lessons(day)[0].startswith("ACME ")
    assert k.traces(NodeName.REFLECT.value)[0]["lesson"].startswith("ACME ")


def test_close_session_advances_and_routes_to_finish_after_the_last_day(kit):
    k = kit()
    state = k.state()
    out = make_close_session(k.deps)(state)
    assert out["day"] == state.day + 1 and out["prev_day"] == state.day and out["counters"]["sessions"] == 1
    assert route_after_close(state.model_copy(update={"day": state.end_day})) == NodeName.OPEN_SESSION
    assert route_after_close(state.model_copy(update={"day": state.end_day + 1})) == NodeName.FINISH


def test_finish_records_pending_orders_as_unfilled(kit):
    k = kit()
    state = k.state()
    state = state.model_copy(update={"phase": Phase.TEST, "day": state.end_day})
    broker = Broker(k.data, k.config.broker)
    broker.step(state.end_day)
    broker.submit([], state.end_day)
    from env.broker import TargetWeightOrder

    broker.submit([TargetWeightOrder("ACME", 0.5)], state.end_day)
    out = make_finish_node(k.deps)(state.model_copy(update={"broker": broker.state_dict(history=False), "day": state.end_day + 1}))
    assert out["phase"] == Phase.DONE and "test" in out["beliefs"]
    orders = k.deps.journal.ledger(k.data, Account.TEST).orders
    assert orders["status"].tolist() == ["unfilled"]


def test_first_decision_judges_the_warm_up_news_and_fits_the_calibrator_on_those_judgements(kit):
    """The bootstrap: the news analyst judges the last warm-up sessions' news (one scripted choice
    per item), the judgements wait in the journal under the items' ids, the history examples carry
    those ids, and the calibrator is fitted on the judged ones in the same reflect step."""
    tone = {}

    def probs(agent, messages, options):
        if agent == "news_analyst":  # a "perfect" scripted analyst: the item's headline decides
            up = "beats" in messages[-1].content or "raises" in messages[-1].content
            tone[messages[-1].content] = up
            return {"positive": 0.8 if up else 0.1, "negative": 0.1 if up else 0.8, "neutral": 0.05, "irrelevant": 0.05}
        return {o: 1.0 / len(options) for o in options}

    k = kit(probs, **{"learning.enabled": True, "episode.bootstrap_judge_sessions": 20})
    state = k.state()
    state = state.model_copy(update=make_reward_node(k.deps)(state))
    examples = k.deps.journal.examples(state.day)
    assert examples and all(e.item_id for e in examples)
    out = make_reflect_node(k.deps)(state)
    assert out["adapter_version"] == state.day
    view = k.data.view(state.day)
    window = [n for n in view.news("ACME", since=state.day - 21) if n.id not in {m.id for m in view.news("ACME", since=state.prev_day)}]
    judged = k.deps.journal.judgement_scores([n.id for n in window], state.day)
    assert set(judged) == {n.id for n in window} and window
    assert len([c for c in k.llm.calls if c.agent == "news_analyst"]) == len(window)
    fit = [r for r in k.traces("reflect") if r.get("adapter_fit")][-1]
    assert fit["history_judged"] == len(window)
    usable = [e for e in examples if e.item_id in judged and e.index + 3 <= state.day]
    assert fit["calibrator_fit"]["n_examples"] == len(usable)
    # A re-run reflect node (resume after a crash) judges nothing twice.
    before = len(k.llm.calls)
    make_reflect_node(k.deps)(state.model_copy(update={"adapter_version": -1}))
    assert len([c for c in k.llm.calls[before:] if c.agent == "news_analyst"]) == 0
