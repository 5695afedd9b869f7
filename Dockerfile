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
# The serving dependencies (the base `dependencies` of pyproject.toml, no extras) get their own
# layer, keyed on pyproject.toml alone, so editing the sources does not reinstall them. Bytecode is
# compiled here because the service runs as a user who cannot write it: without it every cold
# start recompiles what it imports (tests of the dependencies are left out).
COPY pyproject.toml /build/
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/build/pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /build/requirements.txt \
 && /opt/venv/bin/pip install --no-compile -r /build/requirements.txt \
 && /opt/venv/bin/python -m compileall -q -j 2 -x '/tests?/' --invalidation-mode unchecked-hash \
      /opt/venv/lib
COPY README.md /build/
COPY src /build/src
# churnops itself; then pip and setuptools leave the runtime venv (nothing installs at run time).
RUN /opt/venv/bin/pip install --no-compile --no-deps /build \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall -y -q pip setuptools \
 && /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash \
      "$(/opt/venv/bin/python -c 'import churnops, os; print(os.path.dirname(churnops.__file__))')"

FROM ${BASE_IMAGE}
# libgomp1: the OpenMP runtime LightGBM's library links against (treelite bundles its own).
# /var/lib/churnops (CHURN_HOME), the service user's own: the default prediction log
# (monitoring.db) lives there; mount a volume on it to keep the log, or pass CHURN_STORE_URL.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin churnops \
 && install -d -o 10001 -g 10001 /var/lib/churnops
COPY --from=builder /opt/venv /opt/venv
ARG MODEL_DIR=build/model
COPY ${MODEL_DIR} /app/model
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHURN_MODEL=/app/model \
    CHURN_HOST=0.0.0.0 \
    CHURN_HOME=/var/lib/churnops
WORKDIR /app
USER 10001:10001
# Cloud Run sets PORT; churnops listens on CHURN_PORT, else PORT, else 8080.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % (os.environ.get('CHURN_PORT') or os.environ.get('PORT') or '8080'), timeout=2)"]
# Exec form: churnops runs as PID 1 and receives SIGTERM itself (clean shutdown, exit 0).
CMD ["churnops", "serve"]
