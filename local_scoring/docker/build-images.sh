#!/usr/bin/env bash
# Build the scoring image without a registry and without network inside the build.
#
# Steps: the base image (build-base-image.sh, when the engine lacks it), the pinned
# requirements from PYTHON's environment (lock_requirements.py, so that the image loads the
# models this environment trains), the wheelhouse (download-wheels.sh), then
# local_scoring/Dockerfile with OFFLINE=1 and the source digest that
# `lab deploy --target docker` compares to decide whether the image is current.
#
# Usage: PYTHON=/path/to/python3.11 local_scoring/docker/build-images.sh
#   PYTHON            a Python 3.11 with the project installed (default python3)
#   LAB_BASE_IMAGE    base image (default lab-python-base:bookworm; python:3.11-slim needs a registry)
#   LAB_SCORING_IMAGE tag of the scoring image (default lab-scoring:latest)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
BASE="${LAB_BASE_IMAGE:-lab-python-base:bookworm}"
IMAGE="${LAB_SCORING_IMAGE:-lab-scoring:latest}"
export PYTHON

started=$(date +%s)
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    if [ "$BASE" = "lab-python-base:bookworm" ]; then
        "$HERE/build-base-image.sh" "$BASE"
    else
        echo "error: base image $BASE not found; pull it, or use LAB_BASE_IMAGE=lab-python-base:bookworm" >&2
        exit 1
    fi
fi
echo "base image $BASE ready after $(( $(date +%s) - started )) s"

"$PYTHON" "$HERE/lock_requirements.py"
"$HERE/download-wheels.sh"
digest="$("$PYTHON" -c 'from local_scoring.docker_target import project_root, source_digest; print(source_digest(project_root()))')"

build_started=$(date +%s)
# The context is a tar of the sources and the wheelhouse only (the same files as the digest),
# never the repository folder with its workspace, git history and benchmark output.
"$PYTHON" -c 'import sys; from local_scoring.docker_target import project_root, write_build_context; write_build_context(project_root(), sys.stdout.buffer)' \
| docker build --quiet -f local_scoring/Dockerfile \
    --build-arg BASE_IMAGE="$BASE" --build-arg OFFLINE=1 \
    --build-arg SOURCE_DIGEST="$digest" -t "$IMAGE" - >/dev/null
size=$(docker image inspect "$IMAGE" --format '{{.Size}}')
echo "built $IMAGE in $(( $(date +%s) - build_started )) s ($(( size / 1000000 )) MB); total $(( $(date +%s) - started )) s"
