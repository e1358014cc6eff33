"""Training: hand-computed labels, a purged chronological split, deterministic fits that learn
a learnable pattern, versioned model storage, and backtests that decide with a model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.backtest import prepare_data, prepare_strategy, run_backtest
from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.errors import DataValidationError, StrategyError
from ktrdr.engine.features import compute_features, membership_matrix
from ktrdr.engine.model_choice import pin_model_version
from ktrdr.engine.strategy import Strategy, load_strategy, validate_strategy_text
from ktrdr.engine.training import (
    BUY_CLASS,
    HOLD_CLASS,
    SELL_CLASS,
    EpochReport,
    FittedModel,
    ModelInfo,
    ModelNotFoundError,
    ModelStore,
    TrainingCancelled,
    TrainingData,
    TrainingUnavailable,
    chronological_split,
    class_weights,
    evaluate,
    fit_model,
    forward_labels,
    prepare_training_data,
)

ROOT = Path(__file__).resolve().parents[2]

# Momentum on a smooth wave: the 4-bar rate of change says which way the next 4 bars go
# (both are 30 degrees of a 48-bar cycle apart), so the memberships genuinely predict labels.
WAVE_STRATEGY = """
name: wave_nn
data: {symbol: TEST, timeframe: 1h}
indicators:
  - {id: mom, type: roc, params: {period: 4}}
fuzzy_sets:
  mom:
    input: mom
    sets:
      down: {shape: left_shoulder, points: [-1.5, 0.0]}
      flat: {shape: triangular, points: [-1.0, 0.0, 1.0]}
      up: {shape: right_shoulder, points: [0.0, 1.5]}
training:
  label_horizon: 4
  label_threshold: 0.002
  hidden_layers: [16]
  epochs: 15
  batch_size: 64
  learning_rate: 0.01
  early_stopping_patience: 4
  seed: 7
decisions:
  model: {min_confidence: MIN_CONFIDENCE}
"""


def wave_strategy(min_confidence: float = 0.5, **training: object) -> Strategy:
    strategy = validate_strategy_text(WAVE_STRATEGY.replace("MIN_CONFIDENCE", str(min_confidence)))
    if training:
        strategy = strategy.model_copy(
            update={"training": strategy.training.model_copy(update=training)}
        )
    return strategy


def wave_bars(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """A 48-bar sine cycle of amplitude 5 around 100, plus independent noise on each close."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    close = 100.0 + 5.0 * np.sin(2 * np.pi * t / 48) + rng.normal(0.0, 0.3, n)
    open_ = np.concatenate(([close[0]], close[:-1]))
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + 0.1,
            "low": np.minimum(open_, close) - 0.1,
            "close": close,
            "volume": np.full(n, 1000.0),
        },
        index=index,
    )


@pytest.fixture(scope="module")
def wave_data() -> TrainingData:
    return prepare_training_data(wave_strategy(), wave_bars())


@pytest.fixture(scope="module")
def wave_fit(wave_data: TrainingData) -> FittedModel:
    return fit_model(wave_data, wave_strategy().training)


@pytest.fixture
def trained_store(tmp_path: Path, wave_data: TrainingData, wave_fit: FittedModel) -> ModelStore:
    store = ModelStore(tmp_path / "models")
    store.save(
        wave_fit,
        strategy=wave_strategy(),
        symbol="TEST",
        timeframe="1h",
        metrics=evaluate(wave_fit, wave_data),
        data=wave_data,
    )
    return store


# ---- labels and split ----------------------------------------------------------------


def test_forward_labels_hand_computed_with_hold_band_and_dropped_tail() -> None:
    close = [100.0, 101.0, 100.1, 100.1, 99.0, 100.0]
    # One bar ahead: +1.0%, -0.89%, 0%, -1.1%, +1.01%; the last bar has no future close.
    assert forward_labels(close, 1, 0.005).tolist() == [
        BUY_CLASS,
        SELL_CLASS,
        HOLD_CLASS,
        SELL_CLASS,
        BUY_CLASS,
    ]
    # Two bars ahead: +0.1% (inside the 0.5% band), -0.89%, -1.1%, -0.1%.
    assert forward_labels(close, 2, 0.005).tolist() == [
        HOLD_CLASS,
        SELL_CLASS,
        SELL_CLASS,
        HOLD_CLASS,
    ]
    assert (SELL_CLASS, HOLD_CLASS, BUY_CLASS) == (0, 1, 2)
    assert forward_labels(close, 6, 0.005).tolist() == []


def test_training_rows_have_the_forward_label_of_their_bar(wave_data: TrainingData) -> None:
    bars = wave_bars()
    h = wave_data.label_horizon
    close = bars["close"]
    # The tail without a label is dropped; warm-up rows with NaN features too.
    assert wave_data.timestamps[-1] == bars.index[-1 - h]
    assert wave_data.timestamps[0] == bars.index[4]  # roc(4) needs 4 earlier bars
    for row in (0, 100, len(wave_data.y) - 1):
        at = bars.index.get_loc(wave_data.timestamps[row])
        r = close.iloc[at + h] / close.iloc[at] - 1
        expected = BUY_CLASS if r > 0.002 else SELL_CLASS if r < -0.002 else HOLD_CLASS
        assert wave_data.y[row] == expected
    assert wave_data.X.dtype == np.float32 and wave_data.y.dtype == np.int64
    assert wave_data.feature_names == ["mom.down", "mom.flat", "mom.up"]
    assert not np.isnan(wave_data.X).any()


def test_split_is_chronological_with_a_purge_gap() -> None:
    # 100 rows, gaps of 5: 90 usable -> 9 test, 18 validation, 63 train.
    train, val, test = chronological_split(100, 0.2, 0.1, 5)
    assert (train, val, test) == (slice(0, 63), slice(68, 86), slice(91, 100))


def test_prepared_split_leaves_label_windows_inside_their_part(wave_data: TrainingData) -> None:
    d, h = wave_data, wave_data.label_horizon
    assert d.train.start == 0 and d.test.stop == len(d.y)
    assert d.validation.start - d.train.stop == h
    assert d.test.start - d.validation.stop == h
    assert d.timestamps.is_monotonic_increasing and d.timestamps.is_unique
    bar = pd.Timedelta(hours=1)
    # The last label of a part looks h bars ahead: still before the next part's first bar.
    assert d.timestamps[d.train.stop - 1] + h * bar < d.timestamps[d.validation.start]
    assert d.timestamps[d.validation.stop - 1] + h * bar < d.timestamps[d.test.start]
    counts = d.label_counts
    assert sum(counts["train"].values()) == d.train.stop - d.train.start
    assert set(counts) == {"train", "validation", "test"}


def test_too_few_rows_error_gives_the_numbers() -> None:
    with pytest.raises(DataValidationError) as info:
        prepare_training_data(wave_strategy(), wave_bars(n=80))
    text = str(info.value)
    # 80 bars - 4 without a label = 76, - 4 warm-up rows with NaN features = 72 usable.
    assert "only 72 usable rows: 80 bars in the window" in text
    assert "load more bars" in text


def test_training_needs_fuzzy_sets() -> None:
    strategy = load_strategy("sma_crossover")
    with pytest.raises(StrategyError, match=r"no fuzzy_sets.*define at least one fuzzy"):
        prepare_training_data(strategy, generate_synthetic_bars("1h", 500))


# ---- fitting and evaluation --------------------------------------------------------------


def test_class_weights_are_inverse_frequencies() -> None:
    weights = class_weights(np.array([0, 0, 0, 1], dtype=np.int64))
    # 4 rows over 2 present classes: 4 / (2 * 3) and 4 / (2 * 1); BUY is absent.
    np.testing.assert_allclose(weights, [4 / 6, 2.0, 0.0], rtol=1e-6)


def test_fit_is_deterministic_for_a_seed(wave_data: TrainingData, wave_fit: FittedModel) -> None:
    again = fit_model(wave_data, wave_strategy().training)
    assert [r.val_loss for r in again.history] == [r.val_loss for r in wave_fit.history]
    assert [r.train_loss for r in again.history] == [r.train_loss for r in wave_fit.history]
    np.testing.assert_array_equal(
        again.predict_proba(wave_data.X), wave_fit.predict_proba(wave_data.X)
    )
    other = fit_model(wave_data, wave_strategy(seed=8).training)
    assert [r.train_loss for r in other.history] != [r.train_loss for r in wave_fit.history]


def test_model_learns_a_learnable_pattern(wave_data: TrainingData, wave_fit: FittedModel) -> None:
    metrics = evaluate(wave_fit, wave_data)
    assert metrics["accuracy"] > metrics["baseline_accuracy"] + 0.2, metrics
    assert metrics["per_class"]["BUY"]["recall"] > 0.7
    assert metrics["per_class"]["SELL"]["recall"] > 0.7


def test_evaluate_returns_consistent_plain_json(
    wave_data: TrainingData, wave_fit: FittedModel
) -> None:
    metrics = evaluate(wave_fit, wave_data)
    json.dumps(metrics, allow_nan=False)
    matrix = metrics["confusion_matrix"]["rows_true_columns_predicted"]
    assert metrics["confusion_matrix"]["classes"] == ["SELL", "HOLD", "BUY"]
    assert sum(map(sum, matrix)) == metrics["test_rows"] == len(wave_data.y[wave_data.test])
    assert [row[i] for i, row in enumerate(matrix)] == [
        round(metrics["per_class"][c]["recall"] * metrics["per_class"][c]["support"])
        for c in ("SELL", "HOLD", "BUY")
    ]
    assert metrics["label_distribution"] == wave_data.label_counts


def test_fit_reports_epochs_and_keeps_the_best_weights(wave_data: TrainingData) -> None:
    reports: list[EpochReport] = []
    config = wave_strategy(epochs=40, early_stopping_patience=2).training
    fitted = fit_model(wave_data, config, on_epoch=reports.append)
    assert reports == fitted.history
    assert [r.epoch for r in reports] == list(range(1, fitted.epochs_run + 1))
    assert all(r.epochs == 40 for r in reports)
    losses = [r.val_loss for r in reports]
    assert fitted.best_epoch == 1 + int(np.argmin(losses))
    # Stopped early, after exactly `patience` epochs without a better validation loss.
    assert fitted.epochs_run < 40
    assert fitted.epochs_run - fitted.best_epoch == 2
    # The returned weights are the best epoch's, not the last one's.
    predicted = fitted.predict_proba(wave_data.X[wave_data.validation]).argmax(axis=1)
    accuracy = float(np.mean(predicted == wave_data.y[wave_data.validation]))
    assert accuracy == pytest.approx(reports[fitted.best_epoch - 1].val_accuracy, abs=1e-6)
    assert accuracy != pytest.approx(reports[-1].val_accuracy, abs=1e-6)


def test_should_stop_cancels_after_the_first_epoch(wave_data: TrainingData) -> None:
    reports: list[EpochReport] = []
    with pytest.raises(TrainingCancelled, match="before epoch 2/15"):
        fit_model(
            wave_data,
            wave_strategy().training,
            on_epoch=reports.append,
            should_stop=lambda: len(reports) >= 1,
        )
    assert len(reports) == 1


def test_missing_torch_raises_training_unavailable(
    monkeypatch: pytest.MonkeyPatch, wave_data: TrainingData
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(TrainingUnavailable) as info:
        fit_model(wave_data, wave_strategy().training)
    assert str(info.value) == (
        "PyTorch is not installed; install the ml extra: pip install 'ktrdr[ml]' "
        "(CPU build: pip install torch==2.13.0)"
    )


# ---- model store -------------------------------------------------------------------------


def test_model_store_round_trip_versions_and_list(
    tmp_path: Path, wave_data: TrainingData, wave_fit: FittedModel
) -> None:
    store = ModelStore(tmp_path / "models")
    assert store.list() == []
    metrics = evaluate(wave_fit, wave_data)

    def save() -> ModelInfo:
        return store.save(
            wave_fit,
            strategy=wave_strategy(),
            symbol="TEST",
            timeframe="1h",
            metrics=metrics,
            data=wave_data,
        )

    first, second = save(), save()
    assert (first.name, first.version, second.version) == ("wave_nn", 1, 2)
    assert sorted(p.name for p in (tmp_path / "models" / "wave_nn").iterdir()) == ["v1", "v2"]
    assert [(i.name, i.version) for i in store.list()] == [("wave_nn", 1), ("wave_nn", 2)]
    assert [i.version for i in store.list("wave_nn")] == [1, 2]

    loaded = store.load("wave_nn")
    assert loaded.info.version == 2
    np.testing.assert_array_equal(
        loaded.predict_proba(wave_data.X), wave_fit.predict_proba(wave_data.X)
    )
    meta = json.loads((first.path / "metadata.json").read_text(encoding="utf-8"))
    assert meta == store.load("wave_nn", 1).metadata
    assert meta["feature_names"] == ["mom.down", "mom.flat", "mom.up"]
    assert meta["hidden_layers"] == [16]
    assert meta["labels"] == {"horizon_bars": 4, "threshold": 0.002}
    assert meta["strategy"] == "wave_nn" and len(meta["strategy_sha256"]) == 64
    assert meta["date_ranges"]["train"]["start"] == wave_data.timestamps[0].isoformat()
    assert meta["created_at"].endswith("+00:00")
    assert meta["metrics"] == metrics


def test_missing_model_error_names_what_exists(trained_store: ModelStore) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        trained_store.load("wave_mn")
    text = str(info.value)
    assert "did you mean 'wave_nn'?" in text and "models there: wave_nn" in text
    assert "ktrdr train run <strategy>" in text
    with pytest.raises(ModelNotFoundError, match=r"no version 3 \(versions: v1"):
        trained_store.load("wave_nn", 3)
    with pytest.raises(ModelNotFoundError, match="models there: wave_nn"):
        trained_store.load("../models/wave_nn")  # never resolved outside the store
    with pytest.raises(ModelNotFoundError, match="models there: none"):
        ModelStore(trained_store.root / "empty").load("wave_nn")


# ---- backtests that decide with a model ---------------------------------------------------


def test_backtest_with_model_decisions_runs_end_to_end(trained_store: ModelStore) -> None:
    bars = wave_bars(seed=1)
    result = run_backtest(wave_strategy(0.5), bars, models=trained_store)
    assert result.statistics.num_trades > 5
    total = sum(t.net_pnl for t in result.trades)
    assert result.statistics.final_equity == pytest.approx(100_000.0 + total)


def test_model_decisions_respect_min_confidence(trained_store: ModelStore) -> None:
    bars = wave_bars(seed=1)
    strategy = wave_strategy()
    names, matrix = membership_matrix(strategy, compute_features(strategy, bars))
    assert names == ["mom.down", "mom.flat", "mom.up"] and np.isnan(matrix[:4]).all()
    proba = trained_store.load("wave_nn").predict_proba(np.nan_to_num(matrix))

    def by_hand(min_confidence: float) -> list[int]:
        # Act on the top class only when it is at least min_confidence likely; SELL goes
        # flat (long_only); HOLD and NaN-feature bars keep the previous target.
        expected, side = [], 0
        for i, p in enumerate(proba):
            if not np.isnan(matrix[i]).any() and p.max() >= min_confidence:
                side = {BUY_CLASS: 1, SELL_CLASS: 0}.get(int(p.argmax()), side)
            expected.append(side)
        return expected

    targets = {}
    for min_confidence in (0.34, 0.6):
        targets[min_confidence] = by_hand(min_confidence)
        strategy = wave_strategy(min_confidence)
        got = prepare_strategy(strategy, prepare_data(bars), trained_store)
        assert got.tolist() == targets[min_confidence]
        assert 0 < sum(targets[min_confidence]) < len(bars)
    assert targets[0.34] != targets[0.6]  # the threshold changes decisions

    assert proba.max() < 1.0  # so nothing reaches min_confidence 1.0
    never = run_backtest(wave_strategy(1.0), bars, models=trained_store)
    assert never.statistics.num_trades == 0


def test_model_decisions_do_not_look_ahead(trained_store: ModelStore) -> None:
    bars = wave_bars(n=400, seed=2)
    changed = bars.copy()
    cut = 250
    factors = np.random.default_rng(3).uniform(0.5, 1.5, size=len(bars) - cut - 1)
    prices = ["open", "high", "low", "close"]
    changed.iloc[cut + 1 :, [changed.columns.get_loc(c) for c in prices]] *= factors[:, None]
    a, b = (
        prepare_strategy(wave_strategy(), prepare_data(x), trained_store) for x in (bars, changed)
    )
    np.testing.assert_array_equal(a[: cut + 1], b[: cut + 1])
    assert (a[cut + 1 :] != b[cut + 1 :]).any()  # the change did reach later decisions


def test_model_strategy_without_a_store_is_a_clear_error() -> None:
    with pytest.raises(ModelNotFoundError, match=r"pass the model store \(models=ModelStore"):
        run_backtest(wave_strategy(), wave_bars(n=200))


def test_model_trained_on_other_features_is_refused(trained_store: ModelStore) -> None:
    renamed = WAVE_STRATEGY.replace("flat:", "calm:").replace("MIN_CONFIDENCE", "0.5")
    with pytest.raises(StrategyError) as info:
        run_backtest(validate_strategy_text(renamed), wave_bars(n=200), models=trained_store)
    assert (
        "model wave_nn v1 was trained on features ['mom.down', 'mom.flat', 'mom.up'], "
        "the strategy gives ['mom.down', 'mom.calm', 'mom.up']; retrain it"
    ) in str(info.value)


# ---- schema --------------------------------------------------------------------------------


def _problems(text: str) -> list[str]:
    with pytest.raises(StrategyError) as info:
        validate_strategy_text(text)
    return info.value.problems


def test_unknown_training_key_gets_did_you_mean() -> None:
    text = WAVE_STRATEGY.replace("MIN_CONFIDENCE", "0.5").replace("epochs: 15", "epoch: 15")
    (problem,) = _problems(text)
    assert problem.startswith("training: unknown key 'epoch' (did you mean 'epochs'?)")
    assert "label_horizon" in problem


def test_decisions_need_exactly_one_kind() -> None:
    both = WAVE_STRATEGY.replace(
        "  model: {min_confidence: MIN_CONFIDENCE}",
        "  model: {}\n  fuzzy_rules: {rules: [IF mom IS up THEN BUY]}",
    )
    assert _problems(both) == [
        "decisions: decisions needs exactly one of 'signals', 'fuzzy_rules' or 'model' "
        "(got fuzzy_rules and model)"
    ]
    none = WAVE_STRATEGY.replace("  model: {min_confidence: MIN_CONFIDENCE}", "  {}")
    assert any("exactly one of 'signals', 'fuzzy_rules' or 'model'" in p for p in _problems(none))


def test_training_and_model_settings_are_checked() -> None:
    text = WAVE_STRATEGY.replace("MIN_CONFIDENCE", "0").replace(
        "label_horizon: 4", "label_horizon: 4\n  validation_fraction: 0.45\n  test_fraction: 0.4"
    )
    problems = _problems(text)
    assert any(p.startswith("decisions.model.min_confidence:") for p in problems), problems
    fractions = "validation_fraction + test_fraction is 0.85; keep it below 0.8"
    assert any(fractions in p for p in problems), problems
    no_sets = WAVE_STRATEGY.replace("MIN_CONFIDENCE", "0.5").split("fuzzy_sets:")[0] + (
        "decisions:\n  model: {}\n"
    )
    assert any("no fuzzy_sets" in p for p in _problems(no_sets))
    assert validate_strategy_text(GOOD_DEFAULTS).training.hidden_layers == [32, 16]


GOOD_DEFAULTS = """
name: defaults
data: {symbol: TEST, timeframe: 1h}
indicators: [{id: rsi, type: rsi}]
fuzzy_sets: {rsi: {input: rsi, sets: {low: {shape: left_shoulder, points: [30, 40]}}}}
decisions: {model: {}}
"""


# ---- packaging and the example --------------------------------------------------------------


def test_engine_imports_without_torch() -> None:
    code = (
        "import sys, ktrdr.engine, ktrdr.engine.backtest, ktrdr.engine.training; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_fuzzy_nn_example_validates_trains_and_backtests(tmp_path: Path) -> None:
    strategy = load_strategy("fuzzy_nn")
    assert strategy == load_strategy(ROOT / "strategies" / "fuzzy_nn.yaml")
    assert strategy.decisions.model is not None
    assert strategy.decisions.model.min_confidence == 0.45
    assert strategy.model_name == "fuzzy_nn"
    bars = generate_synthetic_bars("1h", 3000, seed=5)
    start = bars.index[strategy.warmup_bars()]
    data = prepare_training_data(strategy, bars, start=start)
    assert len(data.feature_names) == 9 and data.timestamps[0] >= start
    fitted = fit_model(data, strategy.training.model_copy(update={"epochs": 3}))
    assert 1 <= fitted.epochs_run <= 3
    store = ModelStore(tmp_path)
    metrics = evaluate(fitted, data)
    info = store.save(
        fitted, strategy=strategy, symbol="EURUSD", timeframe="1h", metrics=metrics, data=data
    )
    assert info.version == 1
    beats = metrics["accuracy"] > metrics["baseline_accuracy"]
    assert info.metadata["beats_baseline"] is beats
    if not beats:  # a random walk: saved, flagged, and not used unless pinned
        with pytest.raises(ModelNotFoundError, match="no version of model 'fuzzy_nn' beats"):
            run_backtest(strategy, bars, start=start, models=store)
    strategy = pin_model_version(strategy, 1)
    result = run_backtest(strategy, bars, start=start, models=store)
    json.dumps(result.to_dict(max_equity_points=50), allow_nan=False)
