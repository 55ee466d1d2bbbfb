"""The predictors' checks: computed by the asset that trains, since promotion waits on them."""

from __future__ import annotations

import dagster as dg

from rap_pipeline.defs.predictors.evaluation import BASELINES
from rap_pipeline.defs.predictors.training import PredictorSpec, TrainingOutcome


def predictor_check_specs(spec: PredictorSpec) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            f"{spec.name}_beats_baselines",
            asset=spec.name,
            blocking=True,
            description="The new version's held-out MAE (artists never seen in training) is "
            "lower than the mean baseline's and the one-feature rule's over the whole 95% "
            "interval; a version that fails is registered, never promoted.",
        ),
        dg.AssetCheckSpec(
            f"{spec.name}_has_no_leakage",
            asset=spec.name,
            blocking=True,
            description=f"No feature comes from {spec.label_asset} (the labels' asset) or an "
            "asset downstream of it in the asset graph, and no feature ranks with a label "
            "almost perfectly (|Spearman| ≥ 0.98).",
        ),
    ]


def predictor_check_results(
    spec: PredictorSpec, outcome: TrainingOutcome
) -> list[dg.AssetCheckResult]:
    leakage = outcome.leakage
    leakage_result = dg.AssetCheckResult(
        check_name=f"{spec.name}_has_no_leakage",
        asset_key=spec.name,
        passed=not leakage.found,
        metadata={
            "features_from_label_lineage": leakage.by_lineage or "none",
            "features_copying_a_label": leakage.by_value or "none",
            "label_asset": spec.label_asset,
            "feature_assets": list(spec.feature_assets),
        },
    )
    evaluation = outcome.evaluation
    if evaluation is None:  # nothing new was trained, so nothing new can be promoted
        model = outcome.model
        baselines_result = dg.AssetCheckResult(
            check_name=f"{spec.name}_beats_baselines",
            asset_key=spec.name,
            passed=bool(model.metrics["beats_baselines"]) if model else True,
            severity=dg.AssetCheckSeverity.WARN,
            description=outcome.reason,
            metadata={"trained": False, "judged_version": model.label if model else "none"},
        )
    else:
        baselines_result = dg.AssetCheckResult(
            check_name=f"{spec.name}_beats_baselines",
            asset_key=spec.name,
            passed=all(evaluation.beats(b) for b in BASELINES),
            severity=dg.AssetCheckSeverity.WARN,
            description=outcome.reason,
            metadata={
                "trained": True,
                "judged_version": outcome.model.label,
                "model_mae": evaluation.scores["model"]["mae"].value,
                **{
                    f"mae_gain_over_{b.replace(' ', '_').replace('-', '_')}": str(
                        evaluation.improvement[b]
                    )
                    for b in BASELINES
                },
            },
        )
    return [baselines_result, leakage_result]
