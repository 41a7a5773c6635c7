"""RewardAdapter on the real local model: skill when the news informs, base rate when it does not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.learning.adapter import FitReport, RewardAdapter, TrainingExample, make_featurizer
from agents.learning.config import LearningConfig
from agents.llm.local_model import LocalModelRef
from env.errors import ConfigError
from learning_headlines import TEST_PHRASES, TRAIN_PHRASES, make_headlines


def hidden_state_config(**overrides):
    """The hidden-state reader (the first release's defaults), which these checks are about."""
    return LearningConfig(**{"features": "hidden_states", "weight_decay": 300.0, "oof_folds": 4, **overrides})



def _examples(texts, outcomes):
    return [TrainingExample(text=t, outcome=float(o)) for t, o in zip(texts, outcomes)]


@pytest.fixture(scope="module")
def data():
    train_texts, _, train_outcomes = make_headlines(TRAIN_PHRASES, 160, seed=11, label_noise=0.1)
    test_texts, test_truth, _ = make_headlines(TEST_PHRASES, 80, seed=12)
    return train_texts, train_outcomes, test_texts, test_truth


@pytest.fixture(scope="module")
def informed(featurizer, data):
    train_texts, train_outcomes, _, _ = data
    adapter = RewardAdapter(hidden_state_config(), featurizer)
    report = adapter.fit(_examples(train_texts, train_outcomes))
    return adapter, report


def test_informative_news_generalises_to_unseen_phrasings(informed, data):
    adapter, report = informed
    _, _, test_texts, test_truth = data
    proba = adapter.predict_proba(test_texts)
    accuracy = float(((proba >= 0.5) == (test_truth == 1)).mean())
    assert accuracy >= 0.65, f"held-out paraphrase accuracy {accuracy:.2f}"
    assert report.trained and report.shrink > 0
    assert report.evidence >= hidden_state_config().evidence_min
    assert report.oof_accuracy is not None and report.oof_accuracy > report.oof_base_accuracy + 0.15
    assert adapter.skill > 0.05
    # Confident: predictions move well away from the base rate, in both directions.
    assert float(np.abs(proba - adapter.base_rate).mean()) > 0.1
    assert proba.min() < adapter.base_rate < proba.max()


def test_labels_independent_of_text_shrink_to_the_base_rate(featurizer, data):
    train_texts, train_outcomes, test_texts, _ = data
    rng = np.random.default_rng(3)
    noise = rng.permutation(train_outcomes)  # same magnitudes and base rate, no link to the text
    adapter = RewardAdapter(hidden_state_config(), featurizer)
    report = adapter.fit(_examples(train_texts, noise))
    assert report.trained
    assert report.shrink == 0.0
    assert "no skill" in report.reason
    assert report.evidence < hidden_state_config().evidence_min
    assert abs(report.oof_logloss_gain) < 0.05
    # The raw head still has opinions; what reaches the agent is exactly the base rate.
    assert float(np.abs(adapter.raw_proba(test_texts) - 0.5).max()) > 0.0
    np.testing.assert_array_equal(adapter.predict_proba(test_texts), np.full(len(test_texts), adapter.base_rate))


def test_save_load_round_trip_is_bit_identical(informed, data, featurizer, tmp_path):
    adapter, report = informed
    _, _, test_texts, _ = data
    path = tmp_path / "adapter.pt"
    adapter.save(path)
    loaded = RewardAdapter.load(path, featurizer)
    assert np.array_equal(loaded.predict_proba(test_texts), adapter.predict_proba(test_texts))
    assert np.array_equal(loaded.raw_proba(test_texts), adapter.raw_proba(test_texts))
    assert loaded.report == report
    assert loaded.config == adapter.config
    assert loaded.base_rate == adapter.base_rate and loaded.shrink == adapter.shrink


class _CountingRef(LocalModelRef):
    """A real LocalModelRef that counts how often its weights are asked for."""

    loads = 0

    def load(self):
        self.loads += 1
        return super().load()


def test_refit_and_reload_from_cached_features_never_load_the_weights(informed, data, local_model, feature_cache_dir, tmp_path):
    # What a replayed run does: every text's features are on disk (the session featurizer wrote
    # them), so fitting, saving, loading and predicting need the model's shape, not its weights.
    train_texts, train_outcomes, test_texts, _ = data
    ref = _CountingRef(None, threads=local_model.threads)
    assert (ref.num_hidden_layers, ref.hidden_size) == (local_model.num_hidden_layers, local_model.hidden_size)
    feat = make_featurizer(ref, hidden_state_config(), cache_dir=feature_cache_dir)
    adapter = RewardAdapter(hidden_state_config(), feat)
    report = adapter.fit(_examples(train_texts, train_outcomes))
    adapter.save(tmp_path / "adapter.pt")
    loaded = RewardAdapter.load(tmp_path / "adapter.pt", feat)
    assert np.array_equal(loaded.predict_proba(test_texts), informed[0].predict_proba(test_texts))
    assert report.model_dump(exclude={"train_seconds"}) == informed[1].model_dump(exclude={"train_seconds"})
    assert ref.loads == 0
    # A text the cache has never seen needs a forward pass: only then do the weights load.
    unseen = ["Umbrella Corp announces a record share buyback"]
    fresh = feat.pooled(unseen)
    feat.close()
    assert ref.loads > 0
    np.testing.assert_allclose(fresh, make_featurizer(local_model, hidden_state_config()).pooled(unseen), rtol=1e-5, atol=1e-5)


def test_fit_is_deterministic_given_the_seed(featurizer, data):
    train_texts, train_outcomes, test_texts, _ = data
    examples = _examples(train_texts[:80], train_outcomes[:80])
    first = RewardAdapter(hidden_state_config(seed=5), featurizer)
    second = RewardAdapter(hidden_state_config(seed=5), featurizer)
    first.fit(examples)
    second.fit(examples)
    assert np.array_equal(first.raw_proba(test_texts), second.raw_proba(test_texts))


def test_too_few_examples_predict_the_base_rate_with_a_reason(featurizer, data):
    train_texts, train_outcomes, test_texts, _ = data
    adapter = RewardAdapter(hidden_state_config(min_examples=40), featurizer)
    report = adapter.fit(_examples(train_texts[:10], train_outcomes[:10]))
    assert not report.trained
    assert "min_examples" in report.reason
    ups = int((train_outcomes[:10] > 0).sum())
    assert adapter.base_rate == pytest.approx((ups + 1) / 12, abs=0.2)
    np.testing.assert_array_equal(adapter.predict_proba(test_texts[:3]), np.full(3, adapter.base_rate))
    empty = RewardAdapter(hidden_state_config(), featurizer)
    assert empty.fit([]).n_examples == 0
    assert empty.predict_proba(["Acme beats quarterly estimates"]).tolist() == [0.5]


def test_one_sided_and_zero_outcomes(featurizer, data):
    train_texts, _, _, _ = data
    adapter = RewardAdapter(hidden_state_config(min_examples=4), featurizer)
    examples = _examples(train_texts[:20], [1.0] * 15 + [0.0] * 5)
    report = adapter.fit(examples)
    assert report.n_examples == 20 and report.n_labelled == 15
    assert not report.trained and "all 15" in report.reason
    assert adapter.base_rate == pytest.approx(16 / 17)


def test_magnitude_weighting_changes_the_base_rate(featurizer):
    texts = [f"Acme item {i}" for i in range(6)]
    outcomes = [5.0, 5.0, -1.0, -1.0, -1.0, -1.0]
    weighted = RewardAdapter(hidden_state_config(weight_cap=100.0), featurizer)
    weighted.fit(_examples(texts, outcomes))
    plain = RewardAdapter(hidden_state_config(weight_by_magnitude=False), featurizer)
    plain.fit(_examples(texts, outcomes))
    assert plain.base_rate == pytest.approx(3 / 8)
    assert weighted.base_rate > 0.5  # two +5 moves outweigh four -1 moves
    # How often prices went up does not depend on the weighting: (2 + 1) / (6 + 2) either way.
    assert weighted.report.up_share == plain.report.up_share == pytest.approx(3 / 8)


def test_block_fine_tuning_trains_and_round_trips(featurizer, data, tmp_path):
    train_texts, train_outcomes, test_texts, _ = data
    config = hidden_state_config(train_top_blocks=1, epochs=1, batch_size=16, oof_folds=2, min_examples=20)
    adapter = RewardAdapter(config, featurizer)
    report = adapter.fit(_examples(train_texts[:48], train_outcomes[:48]))
    assert report.trained and report.train_top_blocks == 1
    head_only = RewardAdapter(config.model_copy(update={"train_top_blocks": 0}), featurizer)
    head_report = head_only.fit(_examples(train_texts[:48], train_outcomes[:48]))
    # One block of SmolLM2 is ~3.5M parameters on top of the head.
    assert report.trainable_params > head_report.trainable_params + 1_000_000
    assert not np.array_equal(adapter.raw_proba(test_texts[:8]), head_only.raw_proba(test_texts[:8]))
    path = tmp_path / "blocks.pt"
    adapter.save(path)
    loaded = RewardAdapter.load(path, featurizer)
    assert np.array_equal(loaded.raw_proba(test_texts[:8]), adapter.raw_proba(test_texts[:8]))


def test_fine_tuning_leaves_the_shared_model_untouched(featurizer, data):
    before = featurizer.base.layers[-5].mlp.down_proj.weight.detach().clone()
    train_texts, train_outcomes, _, _ = data
    config = hidden_state_config(train_top_blocks=1, epochs=1, oof_folds=2, min_examples=20, block_lr=1e-3)
    RewardAdapter(config, featurizer).fit(_examples(train_texts[:32], train_outcomes[:32]))
    assert featurizer.base.layers[-5].mlp.down_proj.weight.equal(before)


def test_report_is_json_serialisable(informed):
    _, report = informed
    payload = json.loads(report.to_json())
    assert payload["n_examples"] == 160
    assert FitReport.model_validate(payload) == report


def test_disabled_needs_no_model_and_predicts_the_base_rate():
    adapter = RewardAdapter(hidden_state_config(enabled=False), None)
    report = adapter.fit(_examples(["a", "b", "c"], [1.0, 1.0, -1.0]))
    assert "disabled" in report.reason and not report.trained
    assert adapter.predict_proba(["x"])[0] == pytest.approx(3 / 5)


def test_bad_inputs_are_rejected_with_the_field_named(featurizer):
    with pytest.raises(ValueError, match="outcome"):
        TrainingExample(text="Acme", outcome=float("nan"))
    with pytest.raises(ValueError, match="extra"):
        LearningConfig(layr=-4)
    with pytest.raises(ValueError, match="evidence_full"):
        hidden_state_config(evidence_min=3.0, evidence_full=2.0)
    with pytest.raises(ConfigError, match="learning.enabled"):
        RewardAdapter(hidden_state_config(), None)
    with pytest.raises(ConfigError, match="learning.layer"):
        RewardAdapter(hidden_state_config(layer=-8), featurizer)
