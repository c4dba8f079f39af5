#!/bin/sh
# Container entrypoint: prepare the Prometheus multiprocess directory, then become
# `sentiment-serve` -- the same command the integration tests start -- so that gunicorn runs as
# PID 1 and gets the orchestrator's SIGTERM directly. Arguments go to sentiment-serve.
#
# Settings come from SENTIMENT_* variables (README, Configuration). Nothing here assumes the
# image's paths: it runs the same way from a checkout with the project's venv on PATH.
set -eu

# PROMETHEUS_MULTIPROC_DIR wins, then SENTIMENT_METRICS_DIR, then a directory per port, as in
# service/gunicorn_conf.py, which also wipes the directory when the server starts.
default_dir="${TMPDIR:-/tmp}/sentiment-metrics-${SENTIMENT_PORT:-8000}"
PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-${SENTIMENT_METRICS_DIR:-$default_dir}}"
export PROMETHEUS_MULTIPROC_DIR

if ! mkdir -p "$PROMETHEUS_MULTIPROC_DIR" || [ ! -w "$PROMETHEUS_MULTIPROC_DIR" ]; then
    echo "sentiment-entrypoint: metrics directory $PROMETHEUS_MULTIPROC_DIR is not writable" \
        "by uid $(id -u); mount a writable volume there or set PROMETHEUS_MULTIPROC_DIR" >&2
    exit 1
fi

exec sentiment-serve "$@"
