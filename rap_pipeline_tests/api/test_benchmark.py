"""`rap-pipeline benchmark api` on the API tests' materialization, briefly: both sides measured,
goals judged from the figures, not assumed."""

import re

from rap_pipeline.benchmarks.api_benchmark import run_api_benchmark
from rap_pipeline.core.services import ServiceURLs
from rap_pipeline_tests.api.conftest import settings_for


def test_the_benchmark_measures_http_beside_in_process(corpus_db: dict, embedded: ServiceURLs):
    rows = run_api_benchmark(
        settings_for(corpus_db), corpus_db["url"], embedded.redis_url, clients=2, seconds=1.0
    )
    table = {measure: (value, rate) for measure, value, rate in rows}
    assert table["tracks with vectors"][0] == "18"
    for side in ("in process: search(), 2 threads", "HTTP: GET /search, 2 clients"):
        value, rate = table[side]
        p50, p99 = map(float, re.findall(r"p\d+ ([\d.]+) ms", value))
        assert 0 < p50 <= p99 and int(rate.split()[0]) > 0
    http_p50 = float(table["HTTP p50 goal ≤ 30 ms"][0].split()[0])
    assert table["HTTP p50 goal ≤ 30 ms"][1] == ("met" if http_p50 <= 30 else "missed")
    assert table["HTTP / in process (p50)"][0].endswith("×")
    cpu = dict(re.findall(r"(\w+) ([\d.]+)", table["CPU per HTTP request (ms)"][0]))
    assert set(cpu) == {"clients", "service", "PostgreSQL"}  # the test's servers are local
    assert all(float(ms) > 0 for ms in cpu.values())
