-- 008: the model registry (every trained predictor version, its training-data snapshot and its
-- held-out evaluation; the artifact itself is a file under the data directory) and the latest
-- trends report (tables as JSON; plots are PNG files under the data directory).
CREATE TABLE models (
    name            text NOT NULL,                 -- the predictor asset, e.g. popularity_predictor
    version         integer NOT NULL CHECK (version > 0),
    code_version    text NOT NULL,                 -- the asset's code version that trained it
    target          text NOT NULL,                 -- what it predicts, e.g. spotify_tracks.popularity
    features        jsonb NOT NULL,                -- ordered feature names, as the artifact reads them
    training        jsonb NOT NULL,                -- snapshot: tracks, artists, partitions, data_hash
    metrics         jsonb NOT NULL,                -- held-out evaluation, baselines, CIs, curve
    artifact_path   text NOT NULL,                 -- relative to the artifacts directory
    artifact_sha256 text NOT NULL,
    promoted        boolean NOT NULL DEFAULT false,
    decision        text NOT NULL,                 -- why it was or was not promoted
    created_at      timestamptz NOT NULL DEFAULT now(),
    promoted_at     timestamptz,
    PRIMARY KEY (name, version),
    CONSTRAINT models_promoted_when CHECK (promoted = (promoted_at IS NOT NULL))
);
-- at most one promoted version per predictor
CREATE UNIQUE INDEX models_one_promoted ON models (name) WHERE promoted;

CREATE TABLE trend_reports (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    data_hash   text NOT NULL,                     -- of the tracks and analyses it summarizes
    tables      jsonb NOT NULL,                    -- name -> list of rows
    plots       jsonb NOT NULL,                    -- name -> path relative to the artifacts directory
    created_at  timestamptz NOT NULL DEFAULT now()
);
