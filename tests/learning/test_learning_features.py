"""HiddenStateFeaturizer on the real local model: pooling, block replay and the disk cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.learning.features import HiddenStateFeaturizer, pool, run_blocks
from env.errors import ConfigError, DataError

TEXTS = [
    "Acme beats quarterly estimates",
    "Globex cuts full-year guidance amid weak demand in Europe",
    "Initech faces fraud investigation",
]


def test_pooled_is_masked_mean_of_the_layer(local_model):
    feat = HiddenStateFeaturizer(local_model, layer=-4, pooling="mean")
    pooled = feat.pooled(TEXTS[:1])
    encoded = local_model.tokenizer(TEXTS[:1], return_tensors="pt")
    with torch.inference_mode():
        hidden = local_model.model(**encoded, output_hidden_states=True).hidden_states[-4]
    expected = hidden[0].mean(dim=0).numpy()
    assert pooled.shape == (1, local_model.model.config.hidden_size)
    np.testing.assert_allclose(pooled[0], expected, rtol=1e-5, atol=1e-5)


def test_last_token_pooling_reads_the_end_of_the_wrapped_prompt(featurizer, local_model):
    wrapped = featurizer.wrap(TEXTS[:1])[0]
    assert TEXTS[0] in wrapped and wrapped.endswith("this news is")
    encoded = local_model.tokenizer([wrapped], return_tensors="pt")
    with torch.inference_mode():
        hidden = local_model.model(**encoded, output_hidden_states=True).hidden_states[featurizer.feature_index]
    # The session featurizer may have computed this text in a padded batch: the last digits can move.
    np.testing.assert_allclose(featurizer.pooled(TEXTS[:1])[0], hidden[0, -1].numpy(), rtol=1e-4, atol=1e-3)


def test_long_texts_are_truncated_before_wrapping(local_model):
    feat = HiddenStateFeaturizer(local_model, max_tokens=8, prompt_template="Headline: {text} => verdict:")
    wrapped = feat.wrap(["word " * 50])[0]
    assert wrapped.startswith("Headline: ") and wrapped.endswith(" => verdict:")
    assert len(local_model.tokenizer(wrapped)["input_ids"]) < 20
    with pytest.raises(ConfigError, match="prompt_template"):
        HiddenStateFeaturizer(local_model, prompt_template="no placeholder")


def test_disk_cache_hit_returns_identical_arrays(local_model, tmp_path):
    first = HiddenStateFeaturizer(local_model, cache_dir=tmp_path)
    computed = first.pooled(TEXTS)
    tokens = first.token_states(TEXTS, 20)
    first.close()
    assert first.cache_stats() == {"hits": 0, "misses": 6}
    second = HiddenStateFeaturizer(local_model, cache_dir=tmp_path)
    again = second.pooled(TEXTS)
    tokens_again = second.token_states(TEXTS, 20)
    second.close()
    assert second.cache_stats() == {"hits": 6, "misses": 0}
    assert np.array_equal(computed, again)
    assert all(np.array_equal(a, b) for a, b in zip(tokens, tokens_again))
    # A different layer is a different key, not a stale hit.
    other = HiddenStateFeaturizer(local_model, layer=-8, cache_dir=tmp_path)
    assert not np.array_equal(other.pooled(TEXTS[:1]), computed[:1])
    assert other.cache_stats()["misses"] == 1
    other.close()


def test_duplicate_texts_are_computed_once(local_model):
    feat = HiddenStateFeaturizer(local_model, cache_dir=None)
    out = feat.pooled([TEXTS[0], TEXTS[0], TEXTS[1]])
    assert feat.cache_stats()["misses"] == 2
    assert np.array_equal(out[0], out[1])


def test_replaying_blocks_on_cached_inputs_matches_the_full_forward(featurizer):
    # The fine-tuning path trains blocks on cached block inputs; untrained, it must reproduce the layer.
    stop = featurizer.feature_index
    inputs = featurizer.token_states(TEXTS, stop - 2)
    targets = featurizer.token_states(TEXTS, stop)
    for text, state, target in zip(TEXTS, inputs, targets):
        x = torch.tensor(state).unsqueeze(0)
        mask = torch.ones(1, state.shape[0], dtype=torch.long)
        with torch.inference_mode():
            out = run_blocks(featurizer.base, featurizer.base.layers[stop - 2 : stop], x, mask)
        np.testing.assert_allclose(out[0].numpy(), target, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(
            pool(out, mask, featurizer.pooling)[0].numpy(), featurizer.pooled([text])[0], rtol=1e-3, atol=1e-2
        )


def test_bad_layer_and_bad_text_are_named(local_model):
    with pytest.raises(ConfigError, match="learning.layer"):
        HiddenStateFeaturizer(local_model, layer=99)
    feat = HiddenStateFeaturizer(local_model)
    with pytest.raises(DataError, match="non-empty"):
        feat.pooled(["fine", "  "])
