# churnops prediction service. Build from the repository root:
#   make image MODEL_DIR=.churnops/models/demo
# which copies the model to build/model and runs
#   docker build --build-arg MODEL_DIR=build/model -t churnops .
# The image holds the serving dependencies only (no FLAML, MLflow, pandas or scikit-learn), the
# model artifact, and no credentials: pass CHURN_USER / CHURN_PASSWORD, or mount secret files and
# point CHURN_USER_FILE / CHURN_PASSWORD_FILE at them.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
COPY pyproject.toml README.md /build/
COPY src /build/src
# Base dependencies only: the serving stack pinned in pyproject.toml.
RUN /opt/venv/bin/pip install --no-compile /build \
 && find /opt/venv -name "__pycache__" -type d -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
# libgomp1: the OpenMP runtime LightGBM's and treelite's libraries link against.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin churnops
COPY --from=builder /opt/venv /opt/venv
ARG MODEL_DIR=build/model
COPY ${MODEL_DIR} /app/model
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHURN_MODEL=/app/model \
    CHURN_HOST=0.0.0.0
WORKDIR /app
USER 10001:10001
# Cloud Run sets PORT; churnops listens on CHURN_PORT, else PORT, else 8080.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % (os.environ.get('CHURN_PORT') or os.environ.get('PORT') or '8080'), timeout=2)"]
# Exec form: churnops runs as PID 1 and receives SIGTERM itself (clean shutdown, exit 0).
CMD ["churnops", "serve"]
