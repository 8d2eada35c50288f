#!/usr/bin/env bash
# Download the scoring image's wheels into local_scoring/docker/wheelhouse/, so that the image
# builds without network (build argument OFFLINE=1).
#
# The wheels are the pinned requirements (requirements.txt beside this script) plus the build
# tools that the project's own wheel needs. They are downloaded for the interpreter that runs
# pip here, so use a Python of the image's version (3.11 for both base images):
#   PYTHON=/path/to/python3.11 local_scoring/docker/download-wheels.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
DEST="$HERE/wheelhouse"

"$PYTHON" - <<'PY' || { echo "error: $PYTHON is not Python 3.11, the image's version; set PYTHON" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)
PY
mkdir -p "$DEST"
"$PYTHON" -m pip download --quiet --only-binary=:all: --dest "$DEST" \
    -r "$HERE/requirements.txt" "setuptools>=68" wheel
echo "$(find "$DEST" -name '*.whl' | wc -l) wheels in $DEST ($(du -sh "$DEST" | cut -f1))"
