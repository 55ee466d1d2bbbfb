"""Offline stand-ins for the outside world, shipped as product features: the sample corpus,
the Spotify sample catalog and the local server that speaks the Spotify Web API over it, and
the generator of larger corpora for benchmarks. Nothing under ``defs/`` imports this package;
the CLI hands these to runs as resources."""
