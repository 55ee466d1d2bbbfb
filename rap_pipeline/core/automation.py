"""The automation conditions of the assets: what the Dagster daemon's automation sensor
materializes without anyone asking (``AutomationCondition``, evaluated every tick)."""

from __future__ import annotations

import dagster as dg

AC = dg.AutomationCondition


def keep_fresh() -> dg.AutomationCondition:
    """A partition is materialized when it is new (a new artist) or an upstream partition was
    updated, and not while an input is missing, in progress, or failed a blocking check.
    Partitions that existed before automation started are not back-filled."""
    return (AC.eager() & AC.all_deps_blocking_checks_passed()).with_label(
        "new partition or upstream partition updated; inputs present, done and checked"
    )


def keep_fresh_and_rerun_on_new_code() -> dg.AutomationCondition:
    """``keep_fresh``, and every partition again when the asset's ``code_version`` changes (a
    new analyzer or prompt version): only that asset and what depends on it."""
    return (
        keep_fresh() | AC.code_version_changed().with_label("code version changed: all partitions")
    ).with_label("keep fresh; all partitions again on a new code version")


# when the predictors and trends retrain: at most once a day, from this time (UTC) on
RETRAIN_CRON = "0 3 * * *"


def retrain_daily_when_inputs_changed(cron: str = RETRAIN_CRON) -> dg.AutomationCondition:
    """Once per ``cron`` tick at most: after the tick, as soon as some input partition was
    updated (or the asset's code version changed) since the asset last ran, and no input is
    being materialized. Unchanged inputs: no run. A failed blocking check in one of thousands
    of partitions does not hold retraining back: the predictors and trends read only kept
    tracks and successful analyses."""
    tick_passed = (
        AC.cron_tick_passed(cron).since_last_handled().with_label(f"'{cron}' (UTC) passed")
    )
    inputs_changed = (
        (AC.any_deps_updated() | AC.code_version_changed())
        .since_last_handled()
        .with_label("an input updated, or the code version changed, since the last run")
    )
    return (tick_passed & inputs_changed & ~AC.any_deps_in_progress()).with_label(
        f"daily after '{cron}' (UTC) if an input changed"
    )
