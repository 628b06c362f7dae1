# syntax=docker/dockerfile:1
# Rollback Guardian container image.
#
#   docker build -t guardian:0.1.0 .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/rules:/etc/guardian/rules:ro" \
#     -e GUARDIAN_BOOTSTRAP_SERVERS=kafka:9092 guardian:0.1.0
#
# Rules, subscriptions and API tokens are mounted from outside
# (/etc/guardian/...); secrets come from the environment at run time.
# Nothing secret is ever baked into a layer.

# ---------------------------------------------------------------- build stage
# Exact tag (no "latest", no floating "3.11"): rebuilds are reproducible and a
# base-image bump is a reviewed change.
FROM python:3.11.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY guardian ./guardian
# One wheel for guardian plus wheels of all its dependencies, so the runtime
# stage installs offline and needs no compiler.
RUN pip wheel --wheel-dir /wheels .

# ---------------------------------------------------------------- runtime stage
FROM python:3.11.11-slim-bookworm

LABEL org.opencontainers.image.title="Rollback Guardian" \
      org.opencontainers.image.description="Watches deployments and rolls them back before users notice" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric uid/gid: Kubernetes can only enforce runAsNonRoot when the
# image's USER is numeric.
RUN groupadd --system --gid 10001 guardian \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin guardian \
 && mkdir -p /etc/guardian/rules

# Install the built wheel; the bind mount keeps the wheels out of every layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels guardian

# Deployment settings only; secrets (GUARDIAN_SLACK_TOKEN, GUARDIAN_SMTP_PASSWORD,
# GUARDIAN_SIGNING_KEY, GUARDIAN_SASL_PASSWORD) are passed at run time.
ENV GUARDIAN_RULES=/etc/guardian/rules \
    GUARDIAN_HTTP=0.0.0.0:8080 \
    GUARDIAN_LOG_FORMAT=json

WORKDIR /etc/guardian
USER 10001:10001
EXPOSE 8080

# Slim images have no curl: ask Python. The port follows GUARDIAN_HTTP.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('GUARDIAN_HTTP', '0.0.0.0:8080').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

# SIGTERM drains (stop pulling, finish the batch, flush, commit, exit).
STOPSIGNAL SIGTERM
ENTRYPOINT ["guardian"]
CMD ["run"]
