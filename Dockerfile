# Hotline server image. Speech models live in a volume at /srv/hotline/models (never baked in):
#   docker run -p 8080:8080 -v hotline-models:/srv/hotline/models -v hotline-data:/srv/hotline/data hotline
#   docker run -v hotline-models:/srv/hotline/models hotline models pull vosk-model-small-cn-0.22
# The model manifest and the trained demo intent model ship read-only in /srv/hotline/seed
# (outside the volume): the manifest is read from there while the volume has none, and the
# intent model is copied into an empty volume on the first start.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng libespeak-ng1 fonts-noto-cjk curl \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 hotline
WORKDIR /srv/hotline

COPY pyproject.toml README.md ./
COPY app ./app
# torch from the CPU wheel index (PyPI's default Linux build carries CUDA: several GB more)
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu .

COPY intents ./intents
COPY ivr_flows ./ivr_flows
COPY routing ./routing
COPY models/manifest.toml ./seed/manifest.toml
COPY models/intents ./seed/intents

ENV HOTLINE_HOST=0.0.0.0 \
    HOTLINE_PORT=8080 \
    HOTLINE_DATA_DIR=/srv/hotline/data \
    HOTLINE_MODELS_DIR=/srv/hotline/models \
    HOTLINE_MODELS_SEED_DIR=/srv/hotline/seed \
    HOTLINE_INTENTS_DIR=/srv/hotline/intents \
    HOTLINE_FLOWS_DIR=/srv/hotline/ivr_flows \
    HOTLINE_ROUTING_FILE=/srv/hotline/routing/demo_hotline.yaml \
    XDG_CACHE_HOME=/srv/hotline/data/cache \
    HF_HUB_OFFLINE=1

RUN mkdir -p /srv/hotline/data /srv/hotline/models \
    && chown -R hotline:hotline /srv/hotline/data /srv/hotline/models
VOLUME ["/srv/hotline/models", "/srv/hotline/data"]
USER hotline
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1

ENTRYPOINT ["hotline"]
CMD ["serve"]
