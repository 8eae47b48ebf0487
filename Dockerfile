# Hotline server image. Models are mounted as a volume at /srv/hotline/models (never baked in):
#   docker run -p 8080:8080 -v $PWD/models:/srv/hotline/models -v hotline-data:/srv/hotline/data hotline
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng libespeak-ng1 curl \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 hotline
WORKDIR /srv/hotline

COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir .

COPY intents ./intents
COPY ivr_flows ./ivr_flows

ENV HOTLINE_HOST=0.0.0.0 \
    HOTLINE_PORT=8080 \
    HOTLINE_DATA_DIR=/srv/hotline/data \
    HOTLINE_MODELS_DIR=/srv/hotline/models \
    HOTLINE_INTENTS_DIR=/srv/hotline/intents \
    HOTLINE_FLOWS_DIR=/srv/hotline/ivr_flows \
    HF_HUB_OFFLINE=1

RUN mkdir -p /srv/hotline/data /srv/hotline/models && chown -R hotline:hotline /srv/hotline
VOLUME ["/srv/hotline/models", "/srv/hotline/data"]
USER hotline
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1

ENTRYPOINT ["hotline"]
CMD ["serve"]
