# Sentiment inference service image (see docs/deployment.md).
#
#   docker build -t sentiment-service:0.1.0 .                                  # CPU (tensorflow-cpu)
#   docker build --build-arg VARIANT=gpu -t sentiment-service:0.1.0-gpu .       # GPU (tensorflow[and-cuda])
#   docker build --build-arg EXTRAS=train -t sentiment-service:0.1.0-train .    # + sentiment-train deps
#   docker run --rm -p 8000:8000 sentiment-service:0.1.0
#
# Needs BuildKit (the default builder since Docker 23) for COPY --chmod.

# The one base image of every stage; pin it by digest (python:3.11-slim-bookworm@sha256:...)
# for bit-for-bit rebuilds.
FROM python:3.11-slim-bookworm AS base

# --- requirements: the dependency list, derived from pyproject.toml -------------------------
# A stage of its own so that the install layer below is keyed on the derived list (and the
# constraints) only: a change to pyproject.toml that leaves the dependencies alone (tool
# settings, the version) still reuses the cached install.
FROM base AS requirements
# cpu (tensorflow-cpu) or gpu (tensorflow[and-cuda]); never both.
ARG VARIANT=cpu
# More extras, comma-separated: "train" adds what sentiment-train needs (scikit-learn, matplotlib,
# gensim, the GloVe vectors).
ARG EXTRAS=""
WORKDIR /src
COPY pyproject.toml constraints.txt docker/requirements.py ./
RUN python requirements.py pyproject.toml "${VARIANT}" "${EXTRAS}" > requirements.txt

# --- builder: a virtual environment with the dependencies, then the project ------------------
FROM base AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
COPY --from=requirements /src/requirements.txt /src/constraints.txt ./
# constraints.txt (`make lock`): the exact versions `make install` and CI install too.
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt
# Only now the code, built into a wheel that the runtime stage installs in a small layer of
# its own: editing code rebuilds neither the dependency layer here nor the (GBs) venv layer
# of the image, so a code change pushes and pulls kilobytes.
COPY pyproject.toml README.md ./
COPY training ./training
COPY service ./service
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- runtime: the venv, the bundled model, a non-root user -----------------------------------
FROM base AS runtime
ARG VARIANT=cpu
LABEL org.opencontainers.image.title="sentiment-service" \
      org.opencontainers.image.description="Embedding + RNN sentiment classifier served by gunicorn + Flask" \
      org.opencontainers.image.licenses="Apache-2.0" \
      sentiment-service.variant="${VARIANT}"

# A fixed UID/GID so Kubernetes can check runAsNonRoot and volumes can be granted to it.
RUN groupadd --gid 10001 app \
    && useradd --no-log-init --uid 10001 --gid app \
       --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app

# SENTIMENT_MODEL_DIR is explicit: the project is installed as a regular package, so the code's
# own default (models/default beside the package) does not point at /app.
# SENTIMENT_WORKERS: HTTP workers (gevent, no TensorFlow) in front of the pod's one model
# process (SENTIMENT_INFERENCE=process, the default; ~1.5 GB for the whole container under load
# with the default model, docs/deployment.md); TF threads are sized from the CPU quota.
# TF_FORCE_GPU_ALLOW_GROWTH: processes share one GPU instead of the first grabbing all its memory.
# KERAS_HOME and /dev/shm: the only writable places the service needs are /tmp and /dev/shm,
# so the root filesystem can be mounted read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SENTIMENT_MODEL_DIR=/app/models/default \
    SENTIMENT_HOST=0.0.0.0 \
    SENTIMENT_PORT=8000 \
    SENTIMENT_WORKERS=2 \
    SENTIMENT_WORKER_TMP_DIR=/dev/shm \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics \
    KERAS_HOME=/tmp/.keras \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TF_FORCE_GPU_ALLOW_GROWTH=true

# Least to most often changed: dependencies, default model, entrypoint, the project's code.
COPY --from=builder /opt/venv /opt/venv
COPY models/default /app/models/default
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/sentiment-entrypoint
# (COPY, not RUN --mount: every builder keys a COPY's cache on the wheel's content.)
COPY --from=builder /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps --disable-pip-version-check /tmp/wheels/*.whl \
    && pip check \
    && rm -rf /tmp/wheels
WORKDIR /app
USER 10001:10001
EXPOSE 8000

# Liveness only (the process answers); readiness (/readyz) is the orchestrator's business.
# start-period covers loading and warming up the model.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SENTIMENT_PORT', '8000'), timeout=4)"]

# gunicorn drains on SIGTERM for SENTIMENT_GRACEFUL_TIMEOUT_S (25 s): stop with `-t 30`.
STOPSIGNAL SIGTERM
# Arguments are passed on to sentiment-serve, e.g. `docker run IMAGE --workers 4`.
ENTRYPOINT ["/usr/local/bin/sentiment-entrypoint"]
CMD []
