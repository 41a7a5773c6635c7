"""The local backend with the real embedded model (SmolLM2-135M-Instruct on CPU)."""

from __future__ import annotations

import math

import pytest
from pydantic import BaseModel, Field

from agents.llm.base import ChatMessage, ChoiceRequest
from agents.llm.config import LocalBackendConfig
from agents.llm.local import CONTENT_FREE, LocalBackend, _json_complete, content_free, extract_json_object

SYSTEM = ChatMessage(role="system", content="You are a trading analyst. Answer with one word: buy, sell or hold.")
OPTIONS = ["buy", "sell", "hold"]


def ask(text: str) -> list[ChatMessage]:
    return [SYSTEM, ChatMessage(role="user", content=text)]


def test_text_is_greedy_and_deterministic(local_backend: LocalBackend) -> None:
    messages = ask("What is the capital of France? Answer in one sentence.")
    first = local_backend.text(messages, agent="a", max_tokens=12)
    second = local_backend.text(messages, agent="a", max_tokens=12)
    assert first.text == second.text and "Paris" in first.text
    record = first.record
    assert record.backend == "local" and record.kind == "text" and record.model == "SmolLM2-135M-Instruct.Q4_1"
    assert 0 < record.tokens_out <= 12 and record.tokens_in > 20 and record.latency_s > 0
    sampled = [local_backend.text(messages, agent="a", max_tokens=6, temperature=0.9).text for _ in range(2)]
    assert sampled[0] == sampled[1]  # sampling is seeded by config.seed, without touching the global RNG


def test_calibrated_choice_is_uniform_on_content_free_input(
    local_backend: LocalBackend, local_config: LocalBackendConfig
) -> None:
    raw_backend = LocalBackend(local_config.model_copy(update={"calibrate": False}))  # same model, from the per-process cache
    calibrated = local_backend.choose(ask(CONTENT_FREE), OPTIONS, agent="a", fallback="hold")
    raw = raw_backend.choose(ask(CONTENT_FREE), OPTIONS, agent="a", fallback="hold")
    assert calibrated.calibrated and not raw.calibrated
    assert list(calibrated.probs) == OPTIONS and math.isclose(sum(calibrated.probs.values()), 1.0)
    assert max(calibrated.probs.values()) - min(calibrated.probs.values()) < 1e-3
    # The uncalibrated model is strongly biased on the same content-free prompt.
    assert max(raw.probs.values()) - min(raw.probs.values()) > 0.2
    assert list(raw.probs.values()) == pytest.approx(_softmax(raw.scores))


def test_calibration_subtracts_content_free_log_likelihoods(local_backend: LocalBackend) -> None:
    news = ask("Apple cuts full-year guidance; shares plunge 12% after hours.")
    baseline = local_backend.choose(ask(CONTENT_FREE), OPTIONS, agent="a", fallback="hold").scores
    result = local_backend.choose(news, OPTIONS, agent="a", fallback="hold")
    assert result.scores is not None and baseline is not None
    for a, b in [("buy", "sell"), ("sell", "hold")]:
        calibrated_log_odds = math.log(result.probs[a] / result.probs[b])
        expected = (result.scores[a] - result.scores[b]) - (baseline[a] - baseline[b])
        assert calibrated_log_odds == pytest.approx(expected, abs=1e-3)
    raw_probs = _softmax(result.scores)
    assert raw_probs != pytest.approx(list(result.probs.values()), abs=1e-3)  # calibration changed the answer's odds


def test_multi_token_options_match_full_sequence_scoring(local_backend: LocalBackend) -> None:
    import torch

    options = ["strong buy", "sell everything now", "hold"]
    prompt = local_backend._prompt_ids(ask("Apple beats estimates."))
    option_ids = local_backend._option_ids(options)
    assert [len(ids) > 1 for ids in option_ids] == [True, True, False]
    batched = local_backend.score_options([prompt], [option_ids])[0]
    model = local_backend.loaded.model
    for tokens, score in zip(option_ids, batched):
        with torch.inference_mode():
            logprobs = torch.log_softmax(model(torch.tensor([prompt + tokens])).logits[0].float(), dim=-1)
        naive = sum(float(logprobs[len(prompt) - 1 + k, token]) for k, token in enumerate(tokens))
        assert score == pytest.approx(naive, abs=2e-3)


def test_choose_many_matches_one_by_one(local_backend: LocalBackend) -> None:
    requests = [
        ChoiceRequest(messages=tuple(ask("Microsoft raises its dividend by 10%.")), options=tuple(OPTIONS), fallback="hold"),
        ChoiceRequest(messages=tuple(ask("Tesla recalls 2 million cars.")), options=tuple(OPTIONS), fallback="hold"),
        ChoiceRequest(
            messages=tuple(ask("Is the market trending? Answer up or down.")), options=("up", "down", "sideways"),
            fallback="sideways",
        ),
    ]
    batched = local_backend.choose_many(requests, agent="a")
    singles = [local_backend.choose(r.messages, r.options, agent="a", fallback=r.fallback) for r in requests]
    assert [b.choice for b in batched] == [s.choice for s in singles]
    for b, s in zip(batched, singles):
        assert list(b.probs) == list(s.probs)
        assert list(b.probs.values()) == pytest.approx(list(s.probs.values()), abs=2e-3)
        assert b.record.kind == "choose" and b.record.tokens_out == 0


def test_system_prefix_kv_is_cached_and_scores_match_a_full_pass(local_config: LocalBackendConfig) -> None:
    import torch

    cached = LocalBackend(local_config)  # same model (per-process cache), its own prefix cache
    fresh = LocalBackend(local_config.model_copy(update={"prefix_cache_entries": 0}))
    options = ["strong buy", "sell everything now", "hold"]
    requests = [
        ChoiceRequest(messages=tuple(ask(text)), options=tuple(options), fallback="hold")
        for text in ("Apple beats estimates.", "Tesla recalls 2 million cars after a long federal safety investigation.")
    ]
    first = cached.choose_many(requests, agent="a")
    # The system prefix was computed once, for the content-free calibration prompt (scored alone),
    # and reused for the batch of both prompts.
    assert cached.prefix_hits == 1
    (prefix,) = cached._prefixes
    assert list(prefix) == cached._prompt_ids(requests[0].messages)[: len(prefix)]
    assert "Apple" not in cached.loaded.tokenizer.decode(list(prefix))  # only the system message is cached
    hits = cached.prefix_hits
    again = cached.choose_many(requests, agent="a")
    assert cached.prefix_hits == hits + 1
    reference = fresh.choose_many(requests, agent="a")
    assert not fresh._prefixes
    for a, b, c in zip(first, again, reference):
        assert a.scores == b.scores
        assert list(a.scores.values()) == pytest.approx(list(c.scores.values()), abs=2e-3)
    # And against scoring each full sequence from its first token.
    model = cached.loaded.model
    prompt = cached._prompt_ids(requests[1].messages)
    for option, tokens in zip(options, cached._option_ids(options)):
        with torch.inference_mode():
            logprobs = torch.log_softmax(model(torch.tensor([prompt + tokens])).logits[0].float(), dim=-1)
        naive = sum(float(logprobs[len(prompt) - 1 + k, token]) for k, token in enumerate(tokens))
        assert first[1].scores[option] == pytest.approx(naive, abs=2e-3)


def test_scores_do_not_depend_on_what_the_process_scored_before(local_config: LocalBackendConfig) -> None:
    # A resumed run starts a fresh process: its first call for an agent must score exactly as the
    # uninterrupted process did, which had the content-free calibration of that prompt already.
    options = ("positive", "negative", "neutral", "irrelevant")
    first, later = (
        ChoiceRequest(messages=tuple(ask(text)), options=options, fallback="neutral")
        for text in ("Tesla recalls 2 million cars after a long federal safety investigation.", "Apple beats estimates.")
    )
    warm = LocalBackend(local_config)
    warm.choose_many([first], agent="a")
    (expected,) = warm.choose_many([later], agent="a")
    (fresh,) = LocalBackend(local_config).choose_many([later], agent="a")
    assert fresh.scores == expected.scores
    assert fresh.probs == expected.probs


class Verdict(BaseModel):
    answer: str = Field(description="One word.")


def test_structured_returns_valid_instance_or_recorded_fallback(local_config: LocalBackendConfig) -> None:
    backend = LocalBackend(local_config.model_copy(update={"max_new_tokens": 24}))
    fallback = Verdict(answer="unknown")
    result = backend.structured(ask("Is 2 + 2 equal to 4? Answer yes or no."), Verdict, agent="a", fallback=fallback)
    record = result.record
    assert (record.raw_output or "").startswith("{")
    if record.fallback:
        assert result.value is fallback and record.attempts == 2 and record.error
    else:
        assert isinstance(result.value, Verdict) and record.attempts in (1, 2)
    assert record.tokens_out <= 2 * 24


def test_content_free_replaces_only_user_messages() -> None:
    messages = [SYSTEM, ChatMessage(role="user", content="news"), ChatMessage(role="assistant", content="ok")]
    assert [m.content for m in content_free(messages)] == [SYSTEM.content, CONTENT_FREE, "ok"]


def test_json_helpers() -> None:
    assert extract_json_object('Sure! {"a": {"b": "}"}} trailing') == {"a": {"b": "}"}}
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json_object("no braces here")
    assert _json_complete('"a": "}", "b": {"c": 1}}') and not _json_complete('"a": {"b": 1}')


def _softmax(scores: dict[str, float] | None) -> list[float]:
    assert scores is not None
    top = max(scores.values())
    exps = [math.exp(value - top) for value in scores.values()]
    return [value / sum(exps) for value in exps]
