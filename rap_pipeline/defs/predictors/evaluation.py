"""Training and honest evaluation of a predictor, with no Dagster in sight.

Held-out means held-out artists: folds are grouped by artist (GroupKFold), so no artist's songs
are on both sides, and a model cannot score by recognising an artist. Every candidate (the
model, the baselines, the promoted version's recipe) is fitted and scored on the same folds;
confidence intervals come from a bootstrap over artists (songs of one artist are not
independent), and "beats" means the whole 95% interval of the difference is above zero."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.dummy import DummyRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MAX_FOLDS = 5
BOOTSTRAP_SAMPLES = 1000
CURVE_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
# a feature ranking with the target this closely is the target in disguise
LEAKAGE_SPEARMAN = 0.98
RIDGE_ALPHAS = np.logspace(-1, 5, 7)
INNER_FOLDS = 3
# a gain smaller than this share of the other's MAE is no gain, however sure
MIN_RELATIVE_GAIN = 0.01
MODEL = "model"
MEAN_BASELINE = "mean baseline"
RULE_BASELINE = "one-feature rule"
BASELINES = (MEAN_BASELINE, RULE_BASELINE)


def make_model() -> GridSearchCV:
    """Median imputation, standardization and ridge regression, its penalty chosen by an
    inner cross-validation that also holds artists out (fit with ``groups``): a penalty picked
    on songs of artists it already saw would reward recognising the artist."""
    pipeline = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(), Ridge()
    )
    return GridSearchCV(
        pipeline,
        {"ridge__alpha": RIDGE_ALPHAS},
        cv=GroupKFold(n_splits=INNER_FOLDS),
        scoring="neg_mean_absolute_error",
    )


class OneFeatureRule(RegressorMixin, BaseEstimator):
    """The baseline a person would write: ``y ≈ a + b·x`` with the one feature (among
    ``candidates``, column indices) that ranks with ``y`` best on the training data."""

    def __init__(self, candidates: tuple[int, ...] = ()):
        self.candidates = candidates

    def fit(self, X, y):
        y = np.asarray(y, dtype=float).reshape(len(y), -1)
        columns = list(self.candidates) or list(range(X.shape[1]))
        with warnings.catch_warnings():  # a metric no training track has: median 0
            warnings.simplefilter("ignore", RuntimeWarning)
            self.medians_ = np.nan_to_num(np.nanmedian(X[:, columns], axis=0))
        filled = np.where(np.isnan(X[:, columns]), self.medians_, X[:, columns])
        ranked = pd.DataFrame(filled).rank()
        self.chosen_, self.coefs_ = [], []
        for j in range(y.shape[1]):
            correlations = ranked.corrwith(pd.Series(y[:, j]).rank()).abs().fillna(0.0)
            best = int(correlations.to_numpy().argmax())
            x = filled[:, best]
            slope, intercept = np.polyfit(x, y[:, j], 1) if np.ptp(x) > 0 else (0.0, y[:, j].mean())
            self.chosen_.append(columns[best])
            self.coefs_.append((intercept, slope))
        self.single_target_ = y.shape[1] == 1
        return self

    def predict(self, X):
        out = np.empty((len(X), len(self.chosen_)))
        for j, (column, (intercept, slope)) in enumerate(
            zip(self.chosen_, self.coefs_, strict=True)
        ):
            index = list(self.candidates or range(X.shape[1])).index(column)
            x = np.where(np.isnan(X[:, column]), self.medians_[index], X[:, column])
            out[:, j] = intercept + slope * x
        return out.ravel() if self.single_target_ else out


@dataclass(frozen=True)
class Candidate:
    """An estimator to cross-validate and the feature columns (indices) it reads."""

    make: Callable[[], BaseEstimator]
    columns: list[int]


@dataclass
class Interval:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {
            "value": round(self.value, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
        }

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass
class Evaluation:
    """Held-out scores of every candidate on the same artist folds."""

    targets: list[str]
    tracks: int
    artists: int
    folds: int
    # candidate -> metric (mae, rmse, r2: averaged over targets) -> interval
    scores: dict[str, dict[str, Interval]]
    # candidate -> target -> Spearman rank correlation of held-out predictions
    spearman: dict[str, dict[str, float]]
    # other candidate -> MAE(other) − MAE(model), 95% interval: > 0 means the model is better
    improvement: dict[str, Interval]
    # (share of training artists, training artists, held-out MAE of the model)
    curve: list[tuple[float, int, float]] = field(default_factory=list)
    rule_features: list[str] = field(default_factory=list)  # chosen by the one-feature rule

    def beats(self, other: str) -> bool:
        """The model's MAE is lower than ``other``'s over the whole 95% interval, by at least
        ``MIN_RELATIVE_GAIN``."""
        gain = self.improvement[other]
        return gain.low > 0 and gain.value >= MIN_RELATIVE_GAIN * self.scores[other]["mae"].value

    def as_dict(self) -> dict:
        return {
            "targets": self.targets,
            "tracks": self.tracks,
            "artists": self.artists,
            "folds": self.folds,
            "scores": {
                name: {metric: i.as_dict() for metric, i in metrics.items()}
                for name, metrics in self.scores.items()
            },
            "spearman": self.spearman,
            "improvement": {name: i.as_dict() for name, i in self.improvement.items()},
            "curve": [
                {"share": share, "artists": n, "mae": round(mae, 4)} for share, n, mae in self.curve
            ],
            "rule_features": self.rule_features,
        }

    def markdown(self) -> str:
        """The held-out table for the materialization's metadata and the CLI."""
        lines = [
            f"Held out by artist: {self.folds} folds over {self.artists} artists, "
            f"{self.tracks} tracks; 95% intervals from {BOOTSTRAP_SAMPLES} bootstrap samples "
            "of artists.",
            "",
            "| candidate | MAE | RMSE | R² | Spearman | MAE gain of the model |",
            "|---|---|---|---|---|---|",
        ]
        for name, metrics in self.scores.items():
            rho = np.mean(list(self.spearman[name].values()))
            gain = str(self.improvement[name]) if name in self.improvement else "–"
            lines.append(
                f"| {name} | {metrics['mae']} | {metrics['rmse']} | {metrics['r2']} "
                f"| {rho:.3f} | {gain} |"
            )
        if self.curve:
            lines += ["", "| training artists | share | held-out MAE |", "|---|---|---|"]
            lines += [f"| {n} | {share:.0%} | {mae:.3f} |" for share, n, mae in self.curve]
        return "\n".join(lines)


def fit_grouped(estimator: BaseEstimator, X, y, groups) -> BaseEstimator:
    """``estimator.fit``, with the rows' artists for a search that holds artists out."""
    y = y if y.ndim == 1 or y.shape[1] > 1 else y[:, 0]
    if isinstance(estimator, GridSearchCV):
        return estimator.fit(X, y, groups=groups)
    return estimator.fit(X, y)


def fit_predict(
    candidate: Candidate, X, y, groups, train, test
) -> tuple[np.ndarray, BaseEstimator]:
    """Fits the candidate on the ``train`` rows; its predictions for the ``test`` rows."""
    columns = candidate.columns
    estimator = fit_grouped(candidate.make(), X[np.ix_(train, columns)], y[train], groups[train])
    predicted = np.asarray(estimator.predict(X[np.ix_(test, columns)]), dtype=float)
    return predicted.reshape(len(test), -1), estimator


def _bootstrap_scores(
    y: np.ndarray, predictions: dict[str, np.ndarray], groups: np.ndarray, seed: int
) -> tuple[dict[str, dict[str, Interval]], dict[str, Interval]]:
    """MAE, RMSE and R² (averaged over targets) of each candidate with 95% intervals, and each
    candidate's MAE minus the model's, resampling whole artists with replacement."""
    artists, codes = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(artists), size=(BOOTSTRAP_SAMPLES, len(artists)))

    def per_artist(values: np.ndarray) -> np.ndarray:  # sums per artist, per target
        return np.stack(
            [np.bincount(codes, values[:, j], len(artists)) for j in range(values.shape[1])], 1
        )

    counts = np.bincount(codes, minlength=len(artists)).astype(float)
    n_all, n_boot = counts.sum(), counts[samples].sum(1)[:, None]
    y_sum, y_sq = per_artist(y), per_artist(y**2)

    def r2(sse_total: np.ndarray, ys: np.ndarray, ysq: np.ndarray, n) -> np.ndarray:
        sst = ysq - ys**2 / n
        return np.mean(1 - sse_total / np.where(sst > 0, sst, np.nan), axis=-1)

    scores, boot_mae = {}, {}
    for name, pred in predictions.items():
        abs_err, sq_err = per_artist(np.abs(y - pred)), per_artist((y - pred) ** 2)
        point = {
            "mae": float(np.mean(abs_err.sum(0) / n_all)),
            "rmse": float(np.mean(np.sqrt(sq_err.sum(0) / n_all))),
            "r2": float(r2(sq_err.sum(0), y_sum.sum(0), y_sq.sum(0), n_all)),
        }
        boot = {
            "mae": np.mean(abs_err[samples].sum(1) / n_boot, axis=1),
            "rmse": np.mean(np.sqrt(sq_err[samples].sum(1) / n_boot), axis=1),
            "r2": r2(sq_err[samples].sum(1), y_sum[samples].sum(1), y_sq[samples].sum(1), n_boot),
        }
        boot_mae[name] = boot["mae"]
        scores[name] = {
            metric: Interval(point[metric], *np.nanpercentile(boot[metric], [2.5, 97.5]))
            for metric in point
        }
    improvement = {
        name: Interval(
            scores[name]["mae"].value - scores[MODEL]["mae"].value,
            *np.percentile(boot_mae[name] - boot_mae[MODEL], [2.5, 97.5]),
        )
        for name in predictions
        if name != MODEL
    }
    return scores, improvement


def evaluate(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    targets: list[str],
    feature_names: list[str],
    rule_candidates: list[int],
    challengers: dict[str, Candidate] | None = None,
    seed: int = 0,
) -> Evaluation:
    """Cross-validates the model, the mean baseline, the one-feature rule (over
    ``rule_candidates``) and any ``challengers`` on the same artist folds."""
    y = np.asarray(y, dtype=float).reshape(len(y), -1)
    every_column = list(range(X.shape[1]))
    candidates = {
        MODEL: Candidate(make_model, every_column),
        MEAN_BASELINE: Candidate(DummyRegressor, every_column[:1]),
        RULE_BASELINE: Candidate(lambda: OneFeatureRule(tuple(rule_candidates)), every_column),
        **(challengers or {}),
    }
    n_artists = len(np.unique(groups))
    folds = list(GroupKFold(n_splits=min(MAX_FOLDS, n_artists)).split(X, y, groups))
    predictions = {name: np.empty_like(y) for name in candidates}
    rule_choices: Counter[str] = Counter()
    curve_errors = {share: np.empty_like(y) for share in CURVE_FRACTIONS}
    curve_artists = {share: [] for share in CURVE_FRACTIONS}
    rng = np.random.default_rng(seed)
    for train, test in folds:
        for name, candidate in candidates.items():
            predictions[name][test], estimator = fit_predict(candidate, X, y, groups, train, test)
            if name == RULE_BASELINE:
                rule_choices.update(feature_names[c] for c in estimator.chosen_)
        train_artists = np.unique(groups[train])
        for share in CURVE_FRACTIONS:
            keep = rng.permutation(train_artists)[
                : max(INNER_FOLDS, round(share * len(train_artists)))
            ]
            subset = train[np.isin(groups[train], keep)]
            curve_artists[share].append(len(keep))
            curve_errors[share][test] = fit_predict(candidates[MODEL], X, y, groups, subset, test)[
                0
            ]
    scores, improvement = _bootstrap_scores(y, predictions, groups, seed)
    spearman = {
        name: {
            target: float(np.nan_to_num(spearmanr(y[:, j], pred[:, j]).statistic))
            for j, target in enumerate(targets)
        }
        for name, pred in predictions.items()
    }
    curve = [
        (share, int(np.mean(curve_artists[share])), float(np.mean(np.abs(y - curve_errors[share]))))
        for share in CURVE_FRACTIONS
    ]
    return Evaluation(
        targets=targets,
        tracks=len(y),
        artists=n_artists,
        folds=len(folds),
        scores=scores,
        spearman=spearman,
        improvement=improvement,
        curve=curve,
        rule_features=[name for name, _ in rule_choices.most_common()],
    )


def fit_final(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> BaseEstimator:
    """The model trained on every labelled track (what is registered and served)."""
    return fit_grouped(make_model(), X, np.asarray(y, dtype=float).reshape(len(y), -1), groups)


def clone_recipe(pipeline: BaseEstimator) -> Callable[[], BaseEstimator]:
    """A fresh, unfitted copy of a registered model's estimator, to cross-validate its recipe
    on today's data beside the new one."""
    return lambda: clone(pipeline)


def target_copies(X: np.ndarray, y: np.ndarray, feature_names: list[str]) -> dict[str, float]:
    """Features that rank with a target almost perfectly (|Spearman| ≥ ``LEAKAGE_SPEARMAN``):
    the target, or something computed from it, among the inputs."""
    y = np.asarray(y, dtype=float).reshape(len(y), -1)
    ranked = pd.DataFrame(X, columns=feature_names).rank()
    suspects: dict[str, float] = {}
    for j in range(y.shape[1]):
        correlations = ranked.corrwith(pd.Series(y[:, j]).rank()).abs()
        for name, rho in correlations[correlations >= LEAKAGE_SPEARMAN].items():
            suspects[name] = max(suspects.get(name, 0.0), round(float(rho), 4))
    return suspects
