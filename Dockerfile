# The videoq image. The API, the workers and the one-shot setup of docker-compose.yml all run it.
FROM python:3.11.16-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# pycairo and ManimPango compile against cairo and Pango, found through pkg-config.
# Manim's Text draws with a system font through fontconfig, and the slim image has no fonts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential \
        fonts-dejavu-core \
        libcairo2-dev \
        libpango1.0-dev \
        pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md worker.py ./
COPY videoq ./videoq
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
RUN pip install ".[manim]"

COPY deploy/healthcheck.py /usr/local/bin/videoq-healthcheck

# A fixed uid, so that file ownership on the videos volume stays the same across rebuilds.
# Docker copies /data/videos, with its owner, into an empty named volume mounted there.
RUN useradd --create-home --uid 10001 --user-group videoq \
    && mkdir -p /data/videos \
    && chown videoq:videoq /data/videos
USER videoq
ENV VIDEOQ_OUTPUT_DIR=/data/videos

CMD ["videoq", "worker"]
