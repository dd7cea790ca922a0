#!/bin/bash
# Build an image with podman on a machine that reaches no container registry, then run it
# as a user would: read-only root filesystem, uid 10001, health check.
#   bash deploy/docker/podman-smoke.sh inference|server
# The base is made from Debian's packages (mmdebstrap, bookworm, Python 3.11.2), the Python
# packages come from a wheelhouse repacked from the project venv (wheelhouse.py). One wheel
# is fetched from the package index: async-timeout, which redis needs below Python 3.11.3
# and the project venv (3.11.7) therefore lacks. Needs root, podman, runc, mmdebstrap.
# The podman flags below (runc, cgroupfs, ulimits) are what a sandbox without systemd and
# with hybrid cgroups needs; elsewhere plain `podman build`/`podman run` do.
set -euo pipefail
IMAGE=${1:?usage: podman-smoke.sh inference|server}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
WORK=${WORK:-/tmp/ghaf-podman}
BASE=localhost/ghaf-base-debian:bookworm
TAG=localhost/ghaf-$IMAGE:$(.venv/bin/ghaf version)
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)
LIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
mkdir -p "$WORK"

if ! "${PODMAN[@]}" image exists "$BASE"; then
    mmdebstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$WORK/base.tar" http://deb.debian.org/debian
    "${PODMAN[@]}" import "$WORK/base.tar" "$BASE"
fi
if [ ! -d build/wheelhouse ]; then  # rm -rf build/wheelhouse after changing the pins
    .venv/bin/python deploy/docker/wheelhouse.py build/wheelhouse \
        $(sh deploy/docker/install-inference.sh --print-requirements) \
        $(sh deploy/docker/install-server.sh --print-requirements)
    .venv/bin/python -m pip download --quiet --no-deps -d build/wheelhouse 'async-timeout>=4.0.3'
fi

time "${PODMAN[@]}" build --format docker "${LIMITS[@]}" -f "deploy/docker/$IMAGE.Dockerfile" \
    --build-arg PYTHON_IMAGE="$BASE" --build-arg PIP_NO_INDEX=1 \
    --build-arg PIP_FIND_LINKS=/src/build/wheelhouse -t "$TAG" .
"${PODMAN[@]}" image inspect --format '{{.Size}} bytes' "$TAG"

# A home owned by the image's user, as a volume; everything else read-only.
rm -rf "$WORK/home" "$WORK/model" && mkdir -p "$WORK/home" "$WORK/model"
chown 10001:10001 "$WORK/home"
RUN=("${PODMAN[@]}" run --rm --read-only --network host "${LIMITS[@]}"
    -v "$WORK/home:/var/lib/ghaf" -v "$WORK/model:/model:ro")
ghaf() { "${RUN[@]}" "$TAG" "$@"; }
ghaf init
if [ "$IMAGE" = inference ]; then
    .venv/bin/python -c "
import sys; sys.path.insert(0, '.')
from pathlib import Path
from ghaf.models import save_model
from tests.unit.k8s.onnx_model import tiny_onnx
save_model(tiny_onnx(), Path('$WORK/model'))"
    chmod -R a+rX "$WORK/model"
    ghaf models register tiny /model
    ghaf roles principal pat && ghaf roles bind pat project_admin --project default
    admin=$(ghaf tokens create pat --project default | tail -1)
    ghaf roles principal ben && ghaf roles bind ben model_approver --project default
    approver=$(ghaf --token "$admin" tokens create ben --project default \
        --role model_approver | tail -1)
    ghaf --token "$approver" models approve tiny:1
    args=(serve tiny:1 --port 8080 --insecure-dev) port=8080 path=/v2/health/ready
else
    args=(server --host 127.0.0.1 --port 8700) port=8700 path=/health
fi
name=ghaf-smoke-$IMAGE
"${PODMAN[@]}" run -d --name "$name" --read-only --network host "${LIMITS[@]}" \
    -v "$WORK/home:/var/lib/ghaf" "$TAG" "${args[@]}" >/dev/null
trap '"${PODMAN[@]}" rm -f "$name" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$port$path" >/dev/null && break; sleep 1; done
curl -sf "http://127.0.0.1:$port$path" && echo
if [ "$IMAGE" = inference ]; then
    curl -sf -X POST "http://127.0.0.1:8080/v2/models/tiny/infer" \
        -H 'content-type: application/json' \
        -d '{"inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[0,0,1,3]}]}'
    echo
fi
"${PODMAN[@]}" healthcheck run "$name" 2>/dev/null && echo "HEALTHCHECK: healthy"
"${PODMAN[@]}" exec "$name" sh -c 'id; touch /opt/ghaf/probe 2>&1 || true'
echo "smoke test of $TAG passed"
