"""Trends over the corpus, with no Dagster in sight: themes, emotions and technique by release
year and by artist; TF-IDF terms that rise and fall over the years; style clusters (k-means
over lyric embeddings and technique metrics, k by silhouette) drawn in two PCA dimensions.
Plots are PNG files drawn headless (matplotlib's Agg canvas, no display needed)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from rap_pipeline.defs.predictors.features import EMBEDDING_ASSET, TrackTable

VERSION = "1"  # the trends asset's code version
RULES, EMOTION = "rule_based_analysis:", "emotion_analysis:"
TECHNIQUE = [
    "rhyme_density",
    "multisyllable_rhyme_share",
    "internal_rhyme_share",
    "mtld",
    "syllables_per_line_mean",
    "flow_regularity",
    "repeated_line_share",
]
MIN_TREND_YEARS = 3  # rising/falling terms need this many years with tracks
MIN_TRACKS_PER_POINT = 10  # fewer tracks per year in most years: plots use 5-year periods
THEMES_PLOTTED = 6  # the most frequent themes; the tables have all
TERMS_SHOWN = 10
MAX_CLUSTERS = 8
SILHOUETTE_SAMPLE = 3000  # silhouette is quadratic in tracks; scored on a fixed sample
ARTISTS_SHOWN = 20  # in the markdown summary; the stored table has every artist


@dataclass
class TrendReport:
    tables: dict[str, list[dict]]  # name -> rows
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # why a part is missing
    years_in_data: list[int] = field(default_factory=list)
    clusters: int = 0
    silhouette: float | None = None


def _columns(frame: pd.DataFrame, prefix: str, names: list[str] | None = None) -> list[str]:
    if names is not None:
        return [prefix + n for n in names if prefix + n in frame.columns]
    return sorted(c for c in frame.columns if c.startswith(prefix))


def data_hash(table: TrackTable) -> str:
    """A fingerprint of everything the report reads."""
    frame = table.frame[["release_year", "lyrics_hash", "artist_slug", *table.feature_columns]]
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return hashlib.sha256(
        hashed.tobytes() + repr(sorted(table.sources.items())).encode()
    ).hexdigest()


def _rows(frame: pd.DataFrame, index_name: str) -> list[dict]:
    out = frame.reset_index().rename(columns={"index": index_name})
    out.columns = [str(c).split(":", 1)[-1] for c in out.columns]
    return [
        {
            k: (None if pd.isna(v) else round(v, 4) if isinstance(v, float) else v)
            for k, v in r.items()
        }
        for r in out.to_dict(orient="records")
    ]


def _means_by(frame: pd.DataFrame, key: str, columns: list[str]) -> pd.DataFrame:
    grouped = frame.dropna(subset=[key]).groupby(key)
    means = grouped[columns].mean()
    means.insert(0, "tracks", grouped.size())
    if key == "release_year":
        means.index = means.index.astype(int)
    return means


def by_period(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, int]:
    """Means by release year, or by 5-year period when most years have few tracks (a year of
    two songs is noise, not a trend); the period's first year labels it."""
    years = frame["release_year"].dropna().astype(int)
    width = 1 if years.value_counts().median() >= MIN_TRACKS_PER_POINT else 5
    dated = frame.loc[years.index, columns].assign(period=(years // width) * width)
    return dated.groupby("period")[columns].mean(), width


def _line_plot(frame: pd.DataFrame, columns: list[str], title: str, ylabel: str) -> Figure:
    means, width = by_period(frame, columns)
    figure = Figure(figsize=(7, 3.6), dpi=90, layout="constrained")
    axes = figure.subplots()
    for column in columns:
        axes.plot(means.index, means[column], marker="o", label=column.split(":", 1)[-1])
    axes.set_title(title + ("" if width == 1 else f" (by {width}-year period)"))
    axes.set_xlabel("release year" if width == 1 else "period starting in")
    axes.set_ylabel(ylabel)
    axes.legend(fontsize="x-small", ncol=2)
    axes.grid(alpha=0.3)
    return figure


def _small_multiples(frame: pd.DataFrame, columns: list[str], title: str) -> Figure:
    """One panel per metric: technique metrics have different scales."""
    means, width = by_period(frame, columns)
    rows = (len(columns) + 3) // 4
    figure = Figure(figsize=(9, 2.3 * rows), dpi=90, layout="constrained")
    panels = figure.subplots(rows, 4, squeeze=False).ravel()
    for axes, column in zip(panels, columns, strict=False):
        axes.plot(means.index, means[column], marker="o", markersize=3)
        axes.set_title(column.split(":", 1)[-1], fontsize="small")
        axes.tick_params(labelsize="x-small")
        axes.grid(alpha=0.3)
    for axes in panels[len(columns) :]:
        axes.set_visible(False)
    figure.suptitle(title + ("" if width == 1 else f" (by {width}-year period)"))
    return figure


def term_trends(frame: pd.DataFrame) -> tuple[list[dict], str | None]:
    """Terms whose mean TF-IDF weight rises or falls fastest across release years (slope of a
    least-squares line through the yearly means, weighted by tracks per year)."""
    dated = frame.dropna(subset=["release_year"])
    years = dated["release_year"].astype(int)
    if years.nunique() < MIN_TREND_YEARS:
        return [], f"needs tracks from {MIN_TREND_YEARS} release years, has {years.nunique()}"
    vectorizer = TfidfVectorizer(
        stop_words="english",
        max_features=5000,
        min_df=min(3, max(1, len(dated) // 50)),
        sublinear_tf=True,
        token_pattern=r"(?u)\b[a-z][a-z']+\b",
    )
    weights = vectorizer.fit_transform(dated["lyrics"].fillna(""))
    year_values = np.sort(years.unique())
    by_year = np.vstack(
        [
            np.asarray(weights[(years == year).to_numpy()].mean(axis=0)).ravel()
            for year in year_values
        ]
    )
    counts = years.value_counts().reindex(year_values).to_numpy(float)
    x = year_values.astype(float) - year_values.mean()
    w = np.sqrt(counts)
    slopes = (w[:, None] * x[:, None] * (by_year - np.average(by_year, 0, counts))).sum(0) / (
        (w * x**2).sum()
    )
    terms = vectorizer.get_feature_names_out()
    # mean weight over the tracks of the earliest and the latest third of the years
    third = max(1, len(year_values) // 3)
    early = np.average(by_year[:third], axis=0, weights=counts[:third])
    late = np.average(by_year[-third:], axis=0, weights=counts[-third:])
    order = np.argsort(slopes)
    rows = []
    picked = (("rising", order[::-1][:TERMS_SHOWN]), ("falling", order[:TERMS_SHOWN]))
    for direction, picks in picked:
        for i in picks:
            rows.append(
                {
                    "term": str(terms[i]),
                    "direction": direction,
                    "slope_per_decade": round(float(slopes[i]) * 10, 5),
                    f"weight_{year_values[0]}_{year_values[third - 1]}": round(float(early[i]), 5),
                    f"weight_{year_values[-third]}_{year_values[-1]}": round(float(late[i]), 5),
                }
            )
    return rows, None


def _terms_plot(rows: list[dict]) -> Figure:
    figure = Figure(figsize=(7, 4), dpi=90, layout="constrained")
    axes = figure.subplots()
    ordered = sorted(rows, key=lambda r: r["slope_per_decade"])
    colors = ["#c0392b" if r["direction"] == "falling" else "#1f77b4" for r in ordered]
    axes.barh([r["term"] for r in ordered], [r["slope_per_decade"] for r in ordered], color=colors)
    axes.set_title("TF-IDF terms rising (blue) and falling (red) over release years")
    axes.set_xlabel("change of mean TF-IDF weight per decade")
    axes.tick_params(axis="y", labelsize="x-small")
    return figure


def style_clusters(
    frame: pd.DataFrame, feature_columns: list[str], seed: int = 0
) -> tuple[pd.Series | None, np.ndarray | None, float | None, str | None]:
    """k-means over standardized lyric embeddings and technique metrics, k in 2…8 by
    silhouette; labels per track, their 2-D PCA coordinates, and the chosen silhouette."""
    usable = frame[feature_columns].dropna(how="all")
    if len(usable) < 10 or not feature_columns:
        return None, None, None, f"needs 10 tracks with features, has {len(usable)}"
    X = StandardScaler().fit_transform(
        SimpleImputer(strategy="median", keep_empty_features=True).fit_transform(usable)
    )
    best: tuple[float, int, np.ndarray] | None = None
    for k in range(2, min(MAX_CLUSTERS, len(usable) - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(X)
        score = silhouette_score(
            X, labels, sample_size=min(SILHOUETTE_SAMPLE, len(X)), random_state=seed
        )
        if best is None or score > best[0]:
            best = (float(score), k, labels)
    score, _, labels = best
    points = PCA(n_components=2, random_state=seed).fit_transform(X)
    return pd.Series(labels, index=usable.index), points, score, None


def _clusters_plot(labels: pd.Series, points: np.ndarray, score: float) -> Figure:
    figure = Figure(figsize=(6, 4.5), dpi=90, layout="constrained")
    axes = figure.subplots()
    scatter = axes.scatter(points[:, 0], points[:, 1], c=labels.to_numpy(), cmap="tab10", s=14)
    axes.legend(*scatter.legend_elements(), title="cluster", fontsize="x-small")
    axes.set_title(f"style clusters (k={labels.nunique()}, silhouette {score:.2f}), PCA")
    axes.set_xlabel("PC 1")
    axes.set_ylabel("PC 2")
    return figure


def _cluster_rows(frame: pd.DataFrame, labels: pd.Series, technique: list[str]) -> list[dict]:
    rows = []
    for cluster, members in frame.loc[labels.index].groupby(labels):
        top_artists = members["artist_slug"].value_counts().head(3)
        rows.append(
            {
                "cluster": int(cluster),
                "tracks": len(members),
                "top_artists": ", ".join(f"{a} ({n})" for a, n in top_artists.items()),
                **{
                    c.split(":", 1)[-1]: round(float(members[c].mean()), 4)
                    for c in technique
                    if members[c].notna().any()
                },
            }
        )
    return rows


def build_report(table: TrackTable) -> TrendReport:
    frame = table.frame
    themes = _columns(frame, RULES + "theme_")
    emotions = _columns(frame, EMOTION + "emotion_")
    technique = _columns(frame, RULES, TECHNIQUE)
    metrics = themes + emotions + technique
    report = TrendReport(tables={})
    report.years_in_data = sorted(frame["release_year"].dropna().astype(int).unique().tolist())
    by_year = _means_by(frame, "release_year", metrics)
    by_artist = _means_by(frame, "artist_slug", metrics)
    report.tables["by_year"] = _rows(by_year, "release_year")
    report.tables["by_artist"] = _rows(by_artist, "artist_slug")
    frequent_themes = frame[themes].mean().nlargest(THEMES_PLOTTED).index.tolist()
    plots = {
        "themes_by_year": (frequent_themes, "theme words per 100 words"),
        "emotions_by_year": (emotions, "mean score"),
        "technique_by_year": (technique, None),
    }
    for name, (columns, ylabel) in plots.items():
        title = name.replace("_", " ")
        if not columns or len(by_year) < 2:
            report.notes[name] = "needs 2 release years and the metrics (run the analyses)"
        elif ylabel is None:
            report.figures[name] = _small_multiples(frame, columns, title)
        else:
            report.figures[name] = _line_plot(frame, columns, title, ylabel)
    terms, why = term_trends(frame)
    report.tables["terms"] = terms
    if terms:
        report.figures["rising_and_falling_terms"] = _terms_plot(terms)
    else:
        report.notes["rising_and_falling_terms"] = why
    cluster_features = _columns(frame, EMBEDDING_ASSET + ":") + technique
    labels, points, score, why = style_clusters(frame, cluster_features)
    if labels is None:
        report.notes["style_clusters"] = why
        report.tables["clusters"] = []
    else:
        report.clusters, report.silhouette = int(labels.nunique()), round(score, 4)
        report.tables["clusters"] = _cluster_rows(frame, labels, technique)
        report.figures["style_clusters"] = _clusters_plot(labels, points, score)
    return report


def save_figures(report: TrendReport, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, figure in report.figures.items():
        path = directory / f"{name}.png"
        figure.savefig(path)
        paths[name] = path
    return paths


def markdown_table(rows: list[dict], columns: list[str] | None = None, limit: int = 30) -> str:
    if not rows:
        return "(none)"
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:limit]:
        cells = [row.get(c) for c in columns]
        lines.append(
            "| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c) for c in cells) + " |"
        )
    if len(rows) > limit:
        lines.append(f"\n({len(rows) - limit} more rows in table trend_reports)")
    return "\n".join(lines)
