#!/usr/bin/env bash
# Download the wheels of a downloaded AutoML model's environment into MODEL_DIR/wheelhouse/, so
# that Dockerfile.automl builds with INSTALLER=pip and OFFLINE=1, without network in the build.
#
# The requirements come from MODEL_DIR/conda_env.yml through conda_spec.py (its pip list plus
# its conda dependencies under their PyPI names). The wheels are chosen for the base image's
# interpreter, libc and machine, which this script reads by running the image, so the host's
# Python version does not matter. pip then downloads binary wheels only: a package that has
# only a source distribution (azureml-defaults needs fusepy, for one) fails here with pip's
# message.
#
# Usage: local_scoring/docker/download-automl-wheels.sh MODEL_DIR
#   LAB_AUTOML_BASE_IMAGE  the base image (default lab-python-base:bullseye, from
#                          `build-base-image.sh --suite bullseye`)
#   PYTHON                 a Python 3 with pip on the host (default python3)
#   PIP_SKIP               conda dependencies to leave out, separated by spaces (such as "mkl")
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
BASE="${LAB_AUTOML_BASE_IMAGE:-lab-python-base:bullseye}"
MODEL_DIR="${1:-}"
[ -n "$MODEL_DIR" ] || { echo "usage: $0 MODEL_DIR  (the folder with conda_env.yml)" >&2; exit 2; }
[ -f "$MODEL_DIR/conda_env.yml" ] || { echo "error: $MODEL_DIR/conda_env.yml not found" >&2; exit 1; }
docker image inspect "$BASE" >/dev/null 2>&1 || {
    echo "error: base image $BASE not found; build it with local_scoring/docker/build-base-image.sh --suite bullseye" >&2
    exit 1
}

# "3.9.2 2.31 x86_64": the interpreter, the glibc version and the machine of the base image.
read -r version glibc machine < <(docker run --rm --network none "$BASE" python3 -c \
    'import platform, sys; print("%d.%d.%d" % sys.version_info[:3], platform.libc_ver()[1], platform.machine())')
abi="cp$(echo "$version" | cut -d. -f1,2 | tr -d .)"

skip=()
for name in ${PIP_SKIP:-}; do
    skip+=(--skip "$name")
done
requirements="$(mktemp "${TMPDIR:-/tmp}/lab-automl-requirements.XXXXXX")"
trap 'rm -f "$requirements"' EXIT
"$PYTHON" "$HERE/conda_spec.py" requirements "$MODEL_DIR/conda_env.yml" --python "$version" "${skip[@]}" >"$requirements"

# Every manylinux tag that this glibc runs: manylinux_2_N for N down to 5, and the legacy
# aliases (manylinux2014 is 2_17, manylinux2010 is 2_12, manylinux1 is 2_5).
platforms=()
glibc_minor="${glibc#2.}"
for ((minor = glibc_minor; minor >= 5; minor--)); do
    platforms+=(--platform "manylinux_2_${minor}_${machine}")
done
platforms+=(--platform "manylinux2014_${machine}" --platform "manylinux2010_${machine}" \
            --platform "manylinux1_${machine}" --platform "linux_${machine}")

DEST="$MODEL_DIR/wheelhouse"
mkdir -p "$DEST"
"$PYTHON" -m pip download --quiet --only-binary=:all: --dest "$DEST" \
    --python-version "$version" --implementation cp --abi "$abi" --abi abi3 --abi none "${platforms[@]}" \
    -r "$requirements" pip
echo "$(find "$DEST" -name '*.whl' | wc -l) wheels for Python $version (glibc $glibc, $machine) in $DEST ($(du -sh "$DEST" | cut -f1))"
