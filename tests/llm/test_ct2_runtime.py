"""The CTranslate2 runtime of the local backend, on the real embedded model: the same answers as
torch (float32), close ones (int8), its own cache identity, and a conversion that is cached."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from agents.config import ScenarioConfig
from agents.llm.base import ChatMessage, ChoiceRequest
from agents.llm.client import backend_identity
from agents.llm.config import LocalBackendConfig
from agents.llm.ct2_runtime import MARKER, convert, ct2_folder
from agents.llm.local import LocalBackend
from agents.llm.local_model import converted_model_folder
from agents.runtime import load_run_config
from env.errors import ConfigError, ResumeError

pytestmark = pytest.mark.slow

SYSTEM = ChatMessage(role="system", content="You are a trading analyst. Answer with one word: buy, sell or hold.")
NEWS = [
    "Apple cuts full-year guidance; shares plunge 12% after hours.",
    "Tesla beats delivery estimates and raises its outlook.",
    "Acme recalls brake assemblies after safety complaints.",
]


def ask(text: str) -> list[ChatMessage]:
    return [SYSTEM, ChatMessage(role="user", content=text)]


@pytest.fixture(scope="module")
def ct2_backend(local_config: LocalBackendConfig) -> LocalBackend:
    return LocalBackend(local_config.model_copy(update={"runtime": "ctranslate2"}))


def test_float32_choose_equals_torch(local_backend: LocalBackend, ct2_backend: LocalBackend) -> None:
    """Calibrated probabilities and raw scores agree with torch's, one-token and multi-token options,
    one by one and batched; the system prefix is a static prompt, so a second call reuses it."""
    for options in (["buy", "sell", "hold"], ["strong buy", "sell everything now", "hold"]):
        requests = [ChoiceRequest(messages=tuple(ask(text)), options=tuple(options), fallback="hold") for text in NEWS]
        torch_results = local_backend.choose_many(requests, agent="a")
        ct2_results = ct2_backend.choose_many(requests, agent="a")
        one_by_one = [ct2_backend.choose(list(r.messages), options, agent="a", fallback="hold") for r in requests]
        for t, c, single in zip(torch_results, ct2_results, one_by_one):
            assert c.calibrated and c.record.backend == "local"
            assert list(c.probs.values()) == pytest.approx(list(t.probs.values()), abs=1e-3)
            assert list(c.scores.values()) == pytest.approx(list(t.scores.values()), abs=2e-3)
            # batching does not change a prompt's answer (beyond the last digits torch's padding moves)
            assert list(single.probs.values()) == pytest.approx(list(c.probs.values()), abs=1e-6)
            assert c.record.tokens_in == t.record.tokens_in
    # The answers carry information: the guidance cut is more of a sell than the beat.
    probs = [r.probs for r in ct2_backend.choose_many(
        [ChoiceRequest(messages=tuple(ask(t)), options=("buy", "sell", "hold"), fallback="hold") for t in NEWS[:2]], agent="a"
    )]
    assert probs[0]["sell"] / probs[0]["buy"] != pytest.approx(probs[1]["sell"] / probs[1]["buy"], rel=1e-3)


def test_float32_generation_equals_torch(local_backend: LocalBackend, ct2_backend: LocalBackend) -> None:
    messages = ask("What is the capital of France? Answer in one sentence.")
    torch_text = local_backend.text(messages, agent="a", max_tokens=24)
    ct2_text = ct2_backend.text(messages, agent="a", max_tokens=24)
    assert ct2_text.text == torch_text.text and "Paris" in ct2_text.text
    assert ct2_text.record.tokens_out == torch_text.record.tokens_out and ct2_text.record.tokens_in == torch_text.record.tokens_in
    sampled = [ct2_backend.text(messages, agent="a", max_tokens=8, temperature=0.9).text for _ in range(2)]
    assert sampled[0] == sampled[1]  # sampling is seeded by config.seed

    from pydantic import BaseModel

    class Verdict(BaseModel):
        action: str
        confidence: float

    fallback = Verdict(action="hold", confidence=0.0)
    prompt = ask("Reply with action buy and confidence 0.7.")
    a = local_backend.structured(prompt, Verdict, agent="a", fallback=fallback)
    b = ct2_backend.structured(prompt, Verdict, agent="a", fallback=fallback)
    assert (b.value, b.record.fallback, b.record.raw_output) == (a.value, a.record.fallback, a.record.raw_output)


def test_int8_is_calibrated_but_its_own_model(local_config: LocalBackendConfig, local_backend: LocalBackend) -> None:
    """int8 is a different (quantised) model: calibrated like the others, with numbers of its own; how
    often it makes torch's call is measured in benchmarks/bench_llm.py, not assumed here."""
    from agents.llm.local import CONTENT_FREE

    int8 = LocalBackend(local_config.model_copy(update={"runtime": "ctranslate2", "compute_type": "int8"}))
    free = int8.choose(ask(CONTENT_FREE), ["buy", "sell", "hold"], agent="a", fallback="hold")
    assert free.calibrated and max(free.probs.values()) - min(free.probs.values()) < 1e-3
    requests = [ChoiceRequest(messages=tuple(ask(t)), options=("buy", "sell", "hold"), fallback="hold") for t in NEWS]
    for t, c in zip(local_backend.choose_many(requests, agent="a"), int8.choose_many(requests, agent="a")):
        assert sum(c.probs.values()) == pytest.approx(1.0) and not c.record.fallback
        assert list(c.scores.values()) != pytest.approx(list(t.scores.values()), abs=1e-3)
    identities = {json.dumps(backend_identity(LocalBackendConfig(**kw)), sort_keys=True) for kw in (
        {"runtime": "torch"}, {}, {"runtime": "ctranslate2", "compute_type": "int8"}
    )}
    assert len(identities) == 3


def test_multi_token_options_on_ct2_match_full_sequence_scores(ct2_backend: LocalBackend, local_backend: LocalBackend) -> None:
    """CTranslate2's one-pass scoring of multi-token options (the prompt as an uncached static prompt,
    one constrained row per option prefix; what int8 uses, float32 hands them to torch) equals the log-likelihood of each whole sequence, prompt and option, as
    CTranslate2 scores it in one pass and as torch does."""
    from agents.llm.ct2_runtime import score_options

    options = ["strong buy", "sell everything now", "hold", "irrelevant"]
    option_ids = ct2_backend._option_ids(options)
    assert sum(len(o) > 1 for o in option_ids) >= 2
    for text in NEWS:
        prompt = ct2_backend._prompt_ids(ask(text))
        prefix = ct2_backend._system_prefix_len(ask(text), prompt)
        (ours,) = score_options(ct2_backend.ct2, [prompt], [option_ids], [prefix])
        to_tokens = ct2_backend.ct2.tokenizer.convert_ids_to_tokens
        whole = ct2_backend.ct2.generator.score_batch([to_tokens(prompt + o) for o in option_ids], max_input_length=0)
        assert ours == pytest.approx([sum(r.log_probs[-len(o):]) for r, o in zip(whole, option_ids)], abs=2e-3)
        (torch_scores,) = local_backend.score_options([prompt], [option_ids], [prefix])
        assert ours == pytest.approx(torch_scores, abs=2e-3)


def test_ctranslate2_is_the_default_and_named_in_run_ids_while_torch_keeps_its_cache_keys(tmp_path) -> None:
    """CTranslate2 float32 is the default runtime. The runtime is always in the dump, so run ids and
    config.json say which one ran (a config.json from before the switch, without it, no longer
    hashes to its id instead of silently switching runtime); torch's cache identity is the first
    releases', so their recorded answers stay valid for runtime: torch."""
    assert LocalBackendConfig().runtime == "ctranslate2" and LocalBackendConfig().compute_type == "float32"
    assert backend_identity(LocalBackendConfig(runtime="torch")) == {
        "backend": "local",
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "params": {"calibrate": True, "max_new_tokens": 256, "seed": 0},
    }
    assert backend_identity(LocalBackendConfig())["params"]["runtime"] == "ctranslate2"
    raw = {"name": "x", "data": {"kind": "synthetic", "tickers": ["ACME"], "days": 60}, "llm": {"backends": {"local": {"kind": "local"}}}}
    default_cfg = ScenarioConfig.model_validate(raw)
    dumped = default_cfg.model_dump(mode="json")["llm"]["backends"]["local"]
    assert dumped["runtime"] == "ctranslate2" and "compute_type" not in dumped
    torch_raw = json.loads(json.dumps(raw))
    torch_raw["llm"]["backends"]["local"]["runtime"] = "torch"
    torch_cfg = ScenarioConfig.model_validate(torch_raw)
    assert torch_cfg.model_dump(mode="json")["llm"]["backends"]["local"]["runtime"] == "torch"
    assert torch_cfg.run_id() != default_cfg.run_id()
    for cfg in (default_cfg, torch_cfg):
        assert ScenarioConfig.model_validate(cfg.model_dump(mode="json")) == cfg  # config.json round-trips
    # An earlier release's torch run: its config.json left the runtime out and its id hashed that.
    # It now reads as CTranslate2, so it no longer hashes to its id and a resume refuses it.
    old = torch_cfg.model_dump(mode="json")
    del old["llm"]["backends"]["local"]["runtime"]
    old_id = f"x-{hashlib.sha256(json.dumps(old, sort_keys=True, separators=(',', ':')).encode()).hexdigest()[:10]}"
    (tmp_path / old_id).mkdir()
    (tmp_path / old_id / "config.json").write_text(json.dumps(old))
    with pytest.raises(ResumeError, match="no longer hashes to"):
        load_run_config(tmp_path, old_id)
    with pytest.raises(ValueError, match="compute_type 'int8' applies to runtime: ctranslate2 only"):
        LocalBackendConfig(runtime="torch", compute_type="int8")


def test_conversion_is_cached_and_redone_when_its_source_changes(tmp_path) -> None:
    source = tmp_path / "hf"
    source.mkdir()
    for item in converted_model_folder().iterdir():
        if item.suffix == ".safetensors":
            os.link(item, source / item.name)  # the weights are shared, not copied
        else:
            (source / item.name).write_bytes(item.read_bytes())
    (tmp_path / "cache").mkdir()
    # A conversion killed halfway leaves a temporary folder and no target: never loaded, redone.
    (tmp_path / "cache" / f".{ct2_folder(source, 'float32', tmp_path / 'cache').name}.tmp-dead").mkdir()
    target = convert(source, "float32", tmp_path / "cache")
    assert target == ct2_folder(source, "float32", tmp_path / "cache") and (target / "model.bin").is_file()
    stamp = json.loads((target / MARKER).read_text())
    assert stamp["source"] == str(source.resolve()) and stamp["compute_type"] == "float32"
    built = (target / "model.bin").stat().st_mtime_ns
    assert convert(source, "float32", tmp_path / "cache") == target
    assert (target / "model.bin").stat().st_mtime_ns == built  # reused, not converted again
    config = source / "config.json"
    config.write_text(config.read_text())  # the source changed (a new modification time)
    convert(source, "float32", tmp_path / "cache")
    assert (target / "model.bin").stat().st_mtime_ns != built
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith("dead")) == [target.name]
    with pytest.raises(ConfigError, match="compute_type"):
        convert(source, "int4", tmp_path / "cache")
