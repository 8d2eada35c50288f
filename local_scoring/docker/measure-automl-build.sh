#!/usr/bin/env bash
# Measure the build times and size of Dockerfile.automl's image on the pip path, for the
# benchmarks page.
#
# It prints the time of four builds: the bullseye base image (build-base-image.sh --suite
# bullseye), a cold build of the image (--no-cache, INSTALLER=pip, OFFLINE=1), and two warm
# builds: with nothing changed, and after a comment is appended to the model's score.py in a
# copy of the build context.
# Usage: local_scoring/docker/measure-automl-build.sh MODEL_DIR
#   MODEL_DIR  a model folder (model.pkl, score.py, conda_env.yml) with its wheelhouse/, filled
#              by download-automl-wheels.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BASE="lab-python-base:bullseye"
IMAGE="lab-automl-scoring:measure"
MODEL_DIR="${1:-}"
[ -n "$MODEL_DIR" ] || { echo "usage: $0 MODEL_DIR  (a model folder with wheelhouse/)" >&2; exit 2; }
[ -d "$MODEL_DIR/wheelhouse" ] || { echo "error: $MODEL_DIR/wheelhouse not found; run download-automl-wheels.sh $MODEL_DIR" >&2; exit 1; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lab-measure-automl.XXXXXX")"
trap 'rm -rf "$WORK"; docker image rm "$IMAGE" >/dev/null 2>&1 || true' EXIT

# The context: the sources that Dockerfile.automl copies, and the model folder as model/.
mkdir -p "$WORK/context"
tar -C "$ROOT" -c --exclude=__pycache__ --exclude=local_scoring/docker/wheelhouse lab local_scoring \
    | tar -x -C "$WORK/context"
cp -r "$MODEL_DIR" "$WORK/context/model"

build() {
    local started
    started=$(date +%s)
    tar -c --format=gnu -C "$WORK/context" . \
    | docker build --quiet "$@" -f local_scoring/Dockerfile.automl --build-arg BASE_IMAGE="$BASE" \
        --build-arg INSTALLER=pip --build-arg OFFLINE=1 --build-arg MODEL_DIR=model -t "$IMAGE" - \
        >/dev/null 2>"$WORK/build.err" \
    || { cat "$WORK/build.err" >&2; exit 1; }
    echo $(( $(date +%s) - started ))
}

started=$(date +%s)
"$HERE/build-base-image.sh" --suite bullseye "$BASE" >/dev/null
echo "base image build: $(( $(date +%s) - started )) s, $(docker image inspect "$BASE" --format '{{.Size}}') bytes"
echo "wheelhouse: $(find "$MODEL_DIR/wheelhouse" -name '*.whl' | wc -l) wheels, $(du -sb "$MODEL_DIR/wheelhouse" | cut -f1) bytes"
echo "automl image, cold (--no-cache): $(build --no-cache) s"
echo "automl image, warm, no change: $(build) s"
echo "# measure-automl-build.sh" >> "$WORK/context/model/score.py"
echo "automl image, warm, score.py changed: $(build) s"
echo "automl image size: $(docker image inspect "$IMAGE" --format '{{.Size}}') bytes"
echo "machine: $(uname -m), $(nproc) cores, docker engine $(docker version --format '{{.Server.Version}}'), storage driver $(docker info --format '{{.Driver}}')"
