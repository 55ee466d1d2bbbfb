"""The evaluation on generated data whose truth is known: a model must find a real signal,
must not beat the baselines on noise, and must not score by recognising artists."""

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsRegressor

from rap_pipeline.defs.predictors.evaluation import (
    MEAN_BASELINE,
    MODEL,
    RULE_BASELINE,
    Candidate,
    OneFeatureRule,
    evaluate,
    target_copies,
)

ARTISTS, PER_ARTIST, FEATURES = 24, 30, 40
NAMES = [f"f{i}" for i in range(FEATURES)]


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(ARTISTS * PER_ARTIST, FEATURES))
    X[rng.random(X.shape) < 0.03] = np.nan  # some missing values, as real analyses have
    groups = np.repeat([f"artist-{i}" for i in range(ARTISTS)], PER_ARTIST)
    return rng, X, groups


def run(X, y, groups):
    return evaluate(
        X, y, groups, targets=["y"], feature_names=NAMES, rule_candidates=list(range(FEATURES))
    )


def test_a_real_signal_is_found_and_beats_both_baselines():
    rng, X, groups = data()
    filled = np.nan_to_num(X)
    # four features matter; no single one explains most of it
    y = 3 * filled[:, 0] + 3 * filled[:, 1] - 3 * filled[:, 2] + 2 * filled[:, 3]
    y = y + rng.normal(scale=1.0, size=len(y))
    evaluation = run(X, y, groups)

    assert evaluation.beats(MEAN_BASELINE) and evaluation.beats(RULE_BASELINE)
    assert evaluation.scores[MODEL]["r2"].value > 0.8
    assert evaluation.scores[MODEL]["r2"].low > 0.7  # the interval too, not just the point
    assert evaluation.spearman[MODEL]["y"] > 0.9
    assert evaluation.rule_features[0] in ("f0", "f1", "f2")  # the rule found a real feature
    # more training artists, lower held-out error
    assert evaluation.curve[-1][2] < evaluation.curve[0][2]
    assert evaluation.folds == 5 and evaluation.artists == ARTISTS
    table = evaluation.markdown()
    assert "| model |" in table and "| mean baseline |" in table and "training artists" in table


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_on_pure_noise_the_model_does_not_beat_the_baselines(seed: int):
    rng, X, groups = data(seed)
    y = rng.normal(size=len(X))
    evaluation = run(X, y, groups)

    assert not evaluation.beats(MEAN_BASELINE)
    assert not evaluation.beats(RULE_BASELINE)
    assert evaluation.improvement[MEAN_BASELINE].low <= 0
    assert evaluation.scores[MODEL]["r2"].value < 0.05


def test_recognising_artists_is_not_rewarded():
    """The label is a property of the artist (as popularity largely is) and the features
    identify the artist (as lyric style does): a random split would reward memorising artists;
    held-out artists give the model nothing to recognise."""
    rng, X, groups = data(4)
    artist_index = np.repeat(np.arange(ARTISTS), PER_ARTIST)
    artist_style = rng.normal(size=(ARTISTS, FEATURES))
    X = artist_style[artist_index] + 0.05 * rng.normal(size=X.shape)  # no missing values
    y = rng.normal(scale=10, size=ARTISTS)[artist_index] + rng.normal(size=len(X))
    # a candidate that can only recognise: the label of the nearest training song
    nearest = Candidate(lambda: KNeighborsRegressor(n_neighbors=1), list(range(FEATURES)))
    evaluation = evaluate(
        X,
        y,
        groups,
        targets=["y"],
        feature_names=NAMES,
        rule_candidates=list(range(FEATURES)),
        challengers={"nearest song": nearest},
    )

    assert evaluation.scores["nearest song"]["r2"].value < 0  # no artist is on both sides
    assert not evaluation.beats(MEAN_BASELINE)
    assert evaluation.scores[MODEL]["r2"].value < 0.1


def test_several_targets_are_scored_together():
    rng, X, groups = data(5)
    filled = np.nan_to_num(X)
    y = np.column_stack(
        [
            filled[:, :4] @ [2, 2, -2, 1] + rng.normal(size=len(X)),
            filled[:, 4:8] @ [1, -2, 2, 2] + rng.normal(size=len(X)),
        ]
    )
    evaluation = evaluate(
        X, y, groups, targets=["a", "b"], feature_names=NAMES, rule_candidates=[0, 4]
    )
    assert evaluation.beats(MEAN_BASELINE) and evaluation.beats(RULE_BASELINE)
    assert set(evaluation.spearman[MODEL]) == {"a", "b"}
    assert min(evaluation.spearman[MODEL].values()) > 0.8


def test_the_one_feature_rule_fits_the_feature_that_ranks_best():
    rng, X, _ = data(6)
    y = 5 * np.nan_to_num(X[:, 7]) + rng.normal(scale=0.5, size=len(X))
    rule = OneFeatureRule(tuple(range(FEATURES))).fit(X, y)
    assert rule.chosen_ == [7]
    intercept, slope = rule.coefs_[0]
    assert slope == pytest.approx(5, abs=0.5)
    assert rule.predict(X).shape == (len(X),)


def test_a_feature_that_is_the_target_in_disguise_is_flagged():
    rng, X, _ = data(7)
    y = rng.normal(size=len(X))
    leaking = np.column_stack([X, 3 * y + 1, np.exp(y)])  # linear and monotone copies
    found = target_copies(leaking, y, [*NAMES, "copy", "exp_copy"])
    assert set(found) == {"copy", "exp_copy"}
    assert target_copies(X, y, NAMES) == {}
