#!/usr/bin/env bash
# Measure the scoring image's build times and size, for the benchmarks page.
#
# It prints the time of four builds. The first is the base image (build-base-image.sh), the
# second a cold build of the scoring image (--no-cache, offline from the wheelhouse). The last
# two are warm builds: with nothing changed, and after a comment is appended to one source file
# in a copy of the build context.
# Usage: PYTHON=/path/to/python3.11 local_scoring/docker/measure-build.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
BASE="lab-python-base:bookworm"
IMAGE="lab-scoring:measure"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lab-measure-build.XXXXXX")"
trap 'rm -rf "$WORK"; docker image rm "$IMAGE" >/dev/null 2>&1 || true' EXIT

"$HERE/download-wheels.sh" >/dev/null
mkdir -p "$WORK/context"
"$PYTHON" -c 'import sys; from local_scoring.docker_target import project_root, write_build_context; write_build_context(project_root(), sys.stdout.buffer)' \
    | tar -x -C "$WORK/context"

build() {
    local started
    started=$(date +%s)
    tar -c --format=gnu -C "$WORK/context" . \
    | docker build --quiet "$@" -f local_scoring/Dockerfile --build-arg BASE_IMAGE="$BASE" \
        --build-arg OFFLINE=1 -t "$IMAGE" - >/dev/null 2>"$WORK/build.err" \
    || { cat "$WORK/build.err" >&2; exit 1; }
    echo $(( $(date +%s) - started ))
}

started=$(date +%s)
"$HERE/build-base-image.sh" "$BASE" >/dev/null
echo "base image build: $(echo $(( $(date +%s) - started ))) s, $(docker image inspect "$BASE" --format '{{.Size}}') bytes"
echo "scoring image, cold (--no-cache): $(build --no-cache) s"
echo "scoring image, warm, no change: $(build) s"
echo "# measure-build.sh" >> "$WORK/context/lab/__init__.py"
echo "scoring image, warm, one source file changed: $(build) s"
echo "scoring image size: $(docker image inspect "$IMAGE" --format '{{.Size}}') bytes"
echo "machine: $(uname -m), $(nproc) cores, docker engine $(docker version --format '{{.Server.Version}}'), storage driver $(docker info --format '{{.Driver}}')"
