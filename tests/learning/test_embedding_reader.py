"""The default reader and the judgement calibrator on real components: the packaged MiniLM
embedder, the project's synthetic market and matured momentum labels, no scripted answers.

The reader must find the news' tone from matured labels alone when news moves prices, and its
out-of-fold gate must stay shut when it does not. The calibrator must trust a perfect analyst and
ignore one that calls nearly everything "positive"."""

from __future__ import annotations

import bisect

import numpy as np
import pytest

from agents.adaptation import AdapterHandle
from agents.analysts import news_text
from agents.learning.adapter import RewardAdapter, TrainingExample
from agents.learning.config import LearningConfig
from agents.learning.features import EmbeddingFeaturizer
from agents.learning.judgement import JudgementCalibrator
from env.config import SyntheticConfig
from env.sources import load_market
from memory import MemoryConfig, make_embedding_function
from memory.factory import embedding_model_id

WARMUP = 150


@pytest.fixture(scope="module")
def featurizer():
    config = MemoryConfig()
    return EmbeddingFeaturizer(make_embedding_function(config), embedding_model_id(config))


def labelled_news(tmp_path_factory, signal: float, seed: int = 101):
    """(session, text, 1+3-session momentum label, true tone, item id) per news item, in time order."""
    data = load_market(
        SyntheticConfig(tickers=["ACME"], start="2023-01-02", days=240, seed=seed, signal=signal, news_per_day=2.5),
        tmp_path_factory.mktemp("market"),
    )
    view = data.view(len(data.dates) - 1)
    closes = view.series("ACME", "close")
    rows = []
    for n in view.news("ACME"):
        s = bisect.bisect_left(data.closes_utc, n.public_at)
        if s + 3 < len(closes):
            label = ((closes[s + 1] - closes[s]) + (closes[s + 3] - closes[s])) / closes[s]
            rows.append((s, news_text(n, 220), float(label), data.truth.item_sentiment.get(n.id, 0.0), n.id))
    return rows


def test_the_embedding_reader_learns_tone_from_matured_labels_and_stays_shut_on_noise(featurizer, tmp_path_factory):
    for signal in (0.8, 0.0):
        rows = labelled_news(tmp_path_factory, signal)
        train = [r for r in rows if r[0] + 3 <= WARMUP]  # what has matured by the first decision
        later = [r for r in rows if r[0] >= WARMUP + 30 and r[3] != 0]
        adapter = RewardAdapter(LearningConfig(), featurizer)
        report = adapter.fit([TrainingExample(text=r[1], outcome=r[2]) for r in train])
        p = adapter.predict_proba([r[1] for r in later])
        tone = np.array([r[3] for r in later])
        if signal:
            assert report.shrink > 0, report.reason
            assert np.corrcoef(p, tone)[0, 1] > 0.5  # true tone, which the reader never saw
            assert (((p - adapter.base_rate) > 0) == (tone > 0)).mean() > 0.75
        else:
            assert report.shrink == 0.0, report.reason
            np.testing.assert_array_equal(p, np.full(len(later), adapter.base_rate))


def test_the_judgement_calibrator_trusts_a_perfect_analyst_and_ignores_a_constant_one(featurizer, tmp_path_factory):
    rows = labelled_news(tmp_path_factory, 0.8)
    examples = [{"text": r[1], "outcome": r[2], "item_id": r[4]} for r in rows]
    rng = np.random.default_rng(0)
    analysts = {
        "perfect": {r[4]: 0.87 * float(np.sign(r[3])) for r in rows},
        "always positive": {r[4]: 0.8 + 0.02 * float(rng.standard_normal()) for r in rows},
    }
    for name, scores in analysts.items():
        handle = AdapterHandle(LearningConfig(), tmp_path_factory.mktemp(name.replace(" ", "-")), lambda: featurizer)
        _, calibration, _ = handle.fit(examples, version=1, scores=scores)
        assert calibration is not None and calibration["n_examples"] == sum(1 for e in examples if e["outcome"] != 0)
        up, down, missing = handle.judged_logits([0.87, -0.87, None])
        assert missing == 0.0
        if name == "perfect":
            assert calibration["shrink"] > 0, calibration["reason"]
            assert up > 0 > down
        else:
            assert calibration["shrink"] == 0.0, calibration["reason"]
            assert up == down == 0.0
        # A reloaded handle (a resumed run) gives the same calibrated answers.
        again = AdapterHandle(LearningConfig(), handle.dir.parent, lambda: featurizer)
        again.ensure(1)
        assert again.judged_logits([0.87, -0.87]) == pytest.approx([up, down])


def test_the_judgement_calibrator_reads_a_run_up_around_its_typical_call(tmp_path_factory):
    """Seed 109's last 40 warm-up sessions (what the analyst judges at the first decision) are a
    run-up: 98 % of their items' matured labels are "up". A perfect analyst's negative calls must
    still count as bearish evidence and its typical call as none, or a window of a dozen items adds
    up to a bullish signal out of bearish news (the first version read deviations against a
    smoothed base rate 0.3 log-odds below its own intercept: a negative call counted +0.05)."""
    rows = [r for r in labelled_news(tmp_path_factory, 0.8, seed=109) if WARMUP - 40 <= r[0] and r[0] + 3 <= WARMUP]
    calibrator = JudgementCalibrator.from_config(LearningConfig())
    scores = [0.87 * float(np.sign(r[3])) for r in rows]
    report = calibrator.fit(scores, [r[2] for r in rows])
    assert report["base_rate"] > 0.95 and report["shrink"] > 0, report["reason"]
    up, neutral, down = calibrator.deviation([0.87, 0.0, -0.87])
    assert down < 0 < up and abs(neutral) < max(up, -down)
    typical = calibrator.deviation(scores)
    assert abs(np.mean(typical)) < 1e-9  # the typical call adds nothing to a window


def test_the_news_window_model_learns_how_news_adds_up_and_stays_shut_on_noise(featurizer, tmp_path_factory):
    """The window model on the real synthetic market and the real MiniLM vectors, through the
    reflect node's own row builder, fitted as at the first decision: on informative news its gate
    opens, it finds the 3 sessions over which the generator spreads an item's drift (the model is
    never told), and its signal over the next 85 sessions follows the true news drift; on noise it
    stays shut."""
    from types import SimpleNamespace

    from agents.nodes.reflect import window_rows

    for signal in (0.8, 0.0):
        data = load_market(
            SyntheticConfig(tickers=["ACME"], start="2023-01-02", days=240, seed=101, signal=signal, news_per_day=2.5),
            tmp_path_factory.mktemp("window-market"),
        )
        rows = labelled_news(tmp_path_factory, signal)
        examples = [{"text": r[1], "outcome": r[2], "index": r[0], "item_id": r[4]} for r in rows if r[0] + 3 <= WARMUP]
        config = LearningConfig()
        deps = SimpleNamespace(config=SimpleNamespace(learning=config), data=data)
        handle = AdapterHandle(config, tmp_path_factory.mktemp("window"), lambda: featurizer)
        _, _, window = handle.fit(examples, version=WARMUP, window=lambda: window_rows(deps, SimpleNamespace(day=WARMUP), examples))
        assert window is not None and window["n_rows"] > 100, window
        later = [r for r in rows if WARMUP - 5 <= r[0] < 235]
        signal_by_day, drift_by_day = [], []
        for day in range(WARMUP, 235):
            inside = [r for r in later if 0 <= day - r[0] < config.window_sessions]
            signal_by_day.append(handle.window_deviation([day - r[0] for r in inside], [r[1] for r in inside]))
            drift_by_day.append(sum(r[3] for r in inside if day - r[0] < 3))
        if signal:
            assert window["shrink"] == 1.0 and window["window"] == 3, window["reason"]
            assert np.corrcoef(signal_by_day, drift_by_day)[0, 1] > 0.5, window["reason"]
        else:
            assert window["shrink"] == 0.0, window["reason"]
            assert set(signal_by_day) == {0.0}
        # A resumed run reloads the same window model.
        again = AdapterHandle(config, handle.dir.parent, lambda: featurizer)
        again.ensure(WARMUP)
        probe = [r[1] for r in later[:4]]
        assert again.window_deviation([0, 1, 1, 2], probe) == pytest.approx(handle.window_deviation([0, 1, 1, 2], probe), rel=1e-6)


def test_the_stacked_window_model_weighs_a_perfect_analysts_calls_above_the_text(featurizer, tmp_path_factory):
    """learning.window_judged on real components: the same rows as above plus a perfect analyst's
    impact scores (the sign of each item's true tone). One fit weighs the calls against the text:
    its signal follows the true news drift more closely than the text-only model's, and it opens
    on those calls alone. On noise news, with calls that know nothing, it stays shut."""
    from types import SimpleNamespace

    from agents.nodes.reflect import window_rows

    for signal in (0.8, 0.0):
        data = load_market(
            SyntheticConfig(tickers=["ACME"], start="2023-01-02", days=240, seed=101, signal=signal, news_per_day=2.5),
            tmp_path_factory.mktemp("stack-market"),
        )
        rows = labelled_news(tmp_path_factory, signal)
        rng = np.random.default_rng(1)
        scores = {r[4]: (0.87 * float(np.sign(r[3])) if signal else float(rng.choice([-0.87, 0.0, 0.87]))) for r in rows}
        examples = [{"text": r[1], "outcome": r[2], "index": r[0], "item_id": r[4]} for r in rows if r[0] + 3 <= WARMUP]
        fits = {}
        for stacked in (True, False):
            config = LearningConfig(window_judged=stacked)
            deps = SimpleNamespace(config=SimpleNamespace(learning=config), data=data)
            handle = AdapterHandle(config, tmp_path_factory.mktemp(f"stack-{stacked}"), lambda: featurizer)
            _, _, window = handle.fit(examples, version=WARMUP, scores=scores,
                                      window=lambda: window_rows(deps, SimpleNamespace(day=WARMUP), examples))
            later = [r for r in rows if WARMUP - 5 <= r[0] < 235]
            signal_by_day, drift_by_day = [], []
            for day in range(WARMUP, 235):
                inside = [r for r in later if 0 <= day - r[0] < config.window_sessions]
                args = ([day - r[0] for r in inside], [r[1] for r in inside])
                signal_by_day.append(handle.window_deviation(*args, [scores[r[4]] for r in inside]) if stacked
                                     else handle.window_deviation(*args))
                drift_by_day.append(sum(r[3] for r in inside if day - r[0] < 3))
            fits[stacked] = (handle, window, signal_by_day, drift_by_day)
        handle, window, signal_by_day, drift_by_day = fits[True]
        assert handle.window_judged() and "judged_weight" in window
        if signal:
            assert window["shrink"] == 1.0 and window["judged_weight"] > 0, window["reason"]
            stacked_corr = np.corrcoef(signal_by_day, drift_by_day)[0, 1]
            text_corr = np.corrcoef(fits[False][2], fits[False][3])[0, 1]
            assert stacked_corr > max(0.8, text_corr + 0.05), (stacked_corr, text_corr, window["reason"])
        else:
            assert window["shrink"] == 0.0, window["reason"]
            assert set(signal_by_day) == {0.0}
        again = AdapterHandle(LearningConfig(window_judged=True), handle.dir.parent, lambda: featurizer)
        again.ensure(WARMUP)
        probe = [r[1] for r in rows[:3]]
        assert again.window_judged() and again.window_deviation([0, 1, 2], probe, [0.87, -0.87, None]) == pytest.approx(
            handle.window_deviation([0, 1, 2], probe, [0.87, -0.87, None]), rel=1e-6)


@pytest.mark.parametrize("seed", [101, 106])
def test_the_judgement_calibrator_finds_the_analysts_neutral_call_from_whole_windows(featurizer, tmp_path_factory, seed):
    """Through the handle and the reflect node's row builder, as at the first decision, on the real
    synthetic market: a perfect analyst's neutral call is its score 0, whatever the world's mix of
    good and bad news makes its typical call; an equally skilled analyst that leans positive
    (every score +0.5 higher) has its neutral call at +0.5, not at 0. Read against the wrong one,
    a window of neutral items adds up to a signal (the typical call cost the truth-reading arm 1.1
    log-odds on a window of 19 balanced items). The call found is kept between 0 and the typical
    call, so it is never further from the true one than the typical call is, and much nearer
    whenever the true one lies in between (the analyst and the world lean the same way)."""
    from types import SimpleNamespace

    from agents.nodes.reflect import window_rows

    data = load_market(
        SyntheticConfig(tickers=["ACME"], start="2023-01-02", days=240, seed=seed, signal=0.8, news_per_day=2.5),
        tmp_path_factory.mktemp("neutral-market"),
    )
    rows = labelled_news(tmp_path_factory, 0.8, seed=seed)
    examples = [{"text": r[1], "outcome": r[2], "index": r[0], "item_id": r[4]} for r in rows if r[0] + 3 <= WARMUP]
    found, checked = {}, []
    for lean in (0.0, 0.5):
        scores = {r[4]: lean + (0.45 if lean else 0.87) * float(np.sign(r[3])) for r in rows}
        for reference in ("window", "typical"):
            config = LearningConfig(judgement_reference=reference)
            deps = SimpleNamespace(config=SimpleNamespace(learning=config), data=data)
            handle = AdapterHandle(config, tmp_path_factory.mktemp(f"neutral-{lean}-{reference}"), lambda: featurizer)
            _, report, _ = handle.fit(examples, version=WARMUP, scores=scores,
                                      window=lambda: window_rows(deps, SimpleNamespace(day=WARMUP), examples))
            assert report is not None and report["shrink"] > 0, report["reason"]
            found[lean, reference] = (report, handle.judged_logits([lean])[0])
            again = AdapterHandle(config, handle.dir.parent, lambda: featurizer)
            again.ensure(WARMUP)  # a resumed run reads against the same call
            assert again.judged_logits([lean, lean + 0.4]) == pytest.approx(handle.judged_logits([lean, lean + 0.4]))
    for lean in (0.0, 0.5):
        report, neutral_item = found[lean, "window"]
        typical = report["typical_score"]
        assert report["reference"] == "window fit", report["neutral_fit"]
        assert abs(report["neutral_score"] - lean) <= abs(typical - lean) + 1e-12, report["neutral_fit"]
        if min(0.0, typical) <= lean <= max(0.0, typical):
            assert abs(report["neutral_score"] - lean) < 0.5 * abs(typical - lean), report["neutral_fit"]
            assert abs(neutral_item) < 0.5 * abs(found[lean, "typical"][1]), (neutral_item, found[lean, "typical"])
        checked.append(min(0.0, typical) <= lean <= max(0.0, typical))
        assert found[lean, "typical"][0]["neutral_score"] == pytest.approx(typical)
    assert checked[0] and (seed != 106 or checked[1])  # seed 106's world leans positive, as the second analyst does


def test_the_neutral_call_stays_the_typical_one_without_window_evidence():
    """Synthetic rows, no model: when the windows' summed calls do not move returns (pure noise),
    or too few rows are fully judged, the calibrator keeps reading against the typical call; when
    they do, it finds the score whose item moves nothing, however far the analyst leans."""
    rng = np.random.default_rng(3)
    config = LearningConfig()
    calibrator = JudgementCalibrator.from_config(config)
    scores = rng.choice([-0.87, 0.0, 0.87], size=400)
    calibrator.fit(0.3 + scores, scores + 0.5 * rng.standard_normal(400))  # skilled, leaning +0.3
    assert calibrator.shrink > 0 and calibrator.neutral == pytest.approx(calibrator.typical)
    counts = rng.integers(0, 12, size=200).astype(float)
    true_sums = np.array([rng.choice([-0.87, 0.0, 0.87], size=int(k)).sum() for k in counts])
    noise = 0.01 * rng.standard_normal(200)
    found = calibrator.fit_neutral(true_sums + 0.3 * counts, counts, noise)
    assert found["reference"] == "typical call" and calibrator.neutral == pytest.approx(calibrator.typical)
    found = calibrator.fit_neutral(true_sums[:20] + 0.3 * counts[:20], counts[:20], 0.004 * true_sums[:20] + noise[:20])
    assert found["reference"] == "typical call" and "too few" in found["reason"]
    found = calibrator.fit_neutral(true_sums + 0.3 * counts, counts, 0.004 * true_sums + noise)
    assert found["reference"] == "window fit" and found["neutral_score"] == pytest.approx(0.3, abs=0.1), found
    assert calibrator.deviation([0.3])[0] == pytest.approx(0.0, abs=0.1 * calibrator.slope)
    with pytest.raises(Exception, match="finite"):
        calibrator.fit_neutral([float("nan")], [1.0], [0.0])
