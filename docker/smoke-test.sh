#!/usr/bin/env bash
# Build the image and check that it runs as documented: non-root, read-only root filesystem,
# a bundle mounted from the host, arguments passed to sentiment-serve, gunicorn as PID 1,
# /predict answering, and a clean exit on `stop`. Needs a container engine, so CI (which has
# none) does not run it; run it before publishing an image:
#   docker/smoke-test.sh                                  # docker, CPU image
#   ENGINE=podman BUILD_ARGS="--build-arg VARIANT=gpu" docker/smoke-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${ENGINE:-docker}
IMAGE=${IMAGE:-sentiment-service:smoke}
PORT=${PORT:-18080}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-300}
name="sentiment-smoke-$$"
url="http://127.0.0.1:$PORT"

build_format=()
# podman builds OCI images by default, which have no HEALTHCHECK: ask for Docker's format.
[[ $ENGINE == podman ]] && build_format=(--format docker)
# shellcheck disable=SC2086 # BUILD_ARGS holds several words on purpose
"$ENGINE" build ${build_format[@]+"${build_format[@]}"} ${BUILD_ARGS:-} -t "$IMAGE" .

cleanup() { "$ENGINE" rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
"$ENGINE" run -d --name "$name" -p "127.0.0.1:$PORT:8000" \
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
    -v "$PWD/models/default:/models/mine:ro" -e SENTIMENT_MODEL_DIR=/models/mine \
    -e SENTIMENT_WORKERS=1 "$IMAGE" --threads 4 >/dev/null

deadline=$((SECONDS + READY_TIMEOUT_S))
until curl -sf -m 2 "$url/readyz" >/dev/null; do
    if [[ $("$ENGINE" inspect -f '{{.State.Running}}' "$name") != true ]] || ((SECONDS > deadline)); then
        "$ENGINE" logs "$name" >&2
        echo "smoke test: the container did not become ready" >&2
        exit 1
    fi
    sleep 1
done

uid=$("$ENGINE" exec "$name" id -u)
[[ $uid == 10001 ]] || { echo "smoke test: runs as uid $uid, not 10001" >&2; exit 1; }
pid1=$("$ENGINE" exec "$name" cat /proc/1/cmdline | tr '\0' ' ')
[[ $pid1 == *gunicorn* ]] || { echo "smoke test: PID 1 is '$pid1', not gunicorn" >&2; exit 1; }
curl -sf -m 30 -X POST "$url/predict" -H 'Content-Type: application/json' \
    -d '{"texts": ["a wonderful film", "dull and far too long"]}' | grep -q '"predictions"'
curl -sf "$url/metrics" | grep -q '^sentiment_worker_ready 1'

"$ENGINE" stop -t 30 "$name" >/dev/null
code=$("$ENGINE" inspect -f '{{.State.ExitCode}}' "$name")
[[ $code == 0 ]] || { echo "smoke test: exit code $code after stop" >&2; exit 1; }
echo "smoke test passed: $IMAGE"
