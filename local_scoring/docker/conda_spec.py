"""Turn a conda environment file (an AutoML model's conda_env.yml) into pip requirements.

Dockerfile.automl runs this with INSTALLER=pip, inside the base image and before anything is
installed, so it uses only the standard library and Python 3.9. It reads the subset of YAML that
conda environment files use (block mappings and lists, plain or quoted scalars, comments) and
rejects anything else with the line number.

The result is the file's ``pip:`` list, as written, followed by its conda dependencies mapped to
PyPI names. Most conda packages have the same name on PyPI and pass through; ``CONDA_TO_PYPI``
renames the known exceptions. Packages that exist only on conda (``CONDA_ONLY``, such as mkl or
libgcc-ng) stop the run with a list of them, unless ``--skip`` names them. The conda file's
python pin must have the interpreter's major.minor version.

Usage:
    python3 conda_spec.py requirements conda_env.yml [--python 3.9] [--skip NAME ...]
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Dict, List, Optional, Tuple, Union

# Conda package names whose PyPI distribution has another name.
CONDA_TO_PYPI = {
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-xgboost-gpu": "xgboost",
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "py-opencv": "opencv-python",
    "msgpack-python": "msgpack",
    "matplotlib-base": "matplotlib",
    "python-graphviz": "graphviz",
    "pyqt": "PyQt5",
}
# Conda packages that are part of the interpreter or pip itself: the base image provides them.
PROVIDED = frozenset({"python", "pip"})
# Conda packages without a PyPI counterpart: native libraries and conda's own metapackages.
CONDA_ONLY = frozenset({
    "_libgcc_mutex", "_openmp_mutex", "blas", "ca-certificates", "cudatoolkit", "cudnn", "icu",
    "intel-openmp", "ld_impl_linux-64", "libblas", "libcblas", "libffi", "libgcc-ng", "libgfortran-ng",
    "libgomp", "liblapack", "libopenblas", "libstdcxx-ng", "libuuid", "llvm-openmp", "mkl", "mkl-include",
    "mkl_fft", "mkl_random", "ncurses", "nomkl", "openblas", "openssl", "readline", "sqlite", "tk",
    "xz", "zlib",
})

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_PLAIN_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+!_]*(\.\*|\*)?$")

Dependency = Union[str, Dict[str, List[str]]]


class SpecError(ValueError):
    """The conda file cannot be read, or cannot be installed with pip on this interpreter."""


def _scalar(text: str, line_number: int) -> str:
    text = text.strip()
    if text[:1] in ("'", '"'):
        quote = text[0]
        if len(text) < 2 or text[-1] != quote:
            raise SpecError(f"line {line_number}: unterminated quoted value {text!r}")
        return text[1:-1]
    if text[:1] in ("[", "{", "&", "*", "|", ">", "!"):
        raise SpecError(f"line {line_number}: unsupported YAML form {text!r}; write lists as '- item' lines")
    return text


def _strip_comment(line: str) -> str:
    """Remove a comment: '#' at the start or after whitespace, outside quotes."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index]
    return line


def parse_environment(text: str) -> Dict[str, object]:
    """Parse a conda environment file into ``{"name": str, "channels": [...], "dependencies": [...]}``.

    A dependency is a match spec string or ``{"pip": [requirement, ...]}``. Top-level keys other
    than name, channels and dependencies (prefix, variables) are skipped with their content.
    Raises ``SpecError`` naming the line of an unsupported construct.
    """
    result: Dict[str, object] = {"name": None, "channels": [], "dependencies": []}
    key: Optional[str] = None
    nested: Optional[Tuple[int, List[str]]] = None  # (indent of the "- pip:" item, its list)
    for line_number, raw in enumerate(text.splitlines(), start=1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise SpecError(f"line {line_number}: tab in indentation; YAML indents with spaces")
        line = _strip_comment(raw).rstrip()
        if not line.strip() or line.strip() in ("---", "..."):
            continue
        indent = len(line) - len(line.lstrip(" "))
        content = line.strip()
        if indent == 0 and not content.startswith("-"):
            name, separator, value = content.partition(":")
            if not separator:
                raise SpecError(f"line {line_number}: expected 'key:' at the top level, got {content!r}")
            key, nested = name.strip(), None
            if key == "name":
                result["name"] = _scalar(value, line_number)
            elif key in ("channels", "dependencies") and value.strip():
                raise SpecError(f"line {line_number}: {key} must be a list of '- item' lines")
            continue
        if key not in ("channels", "dependencies"):
            continue  # the content of a key that does not matter here (prefix, variables)
        if not content.startswith("- ") and content != "-":
            raise SpecError(f"line {line_number}: expected a '- item' line under {key}, got {content!r}")
        item = content[1:].strip()
        if nested is not None and indent > nested[0]:
            nested[1].append(_scalar(item, line_number))
            continue
        nested = None
        if key == "dependencies" and re.match(r"^[A-Za-z0-9_.\-]+:$", item):
            section = item[:-1]
            if section != "pip":
                raise SpecError(f"line {line_number}: unsupported dependency section {section!r}; only 'pip:' is known")
            entries: List[str] = []
            result["dependencies"].append({"pip": entries})
            nested = (indent, entries)
            continue
        result[key].append(_scalar(item, line_number))
    return result


def split_match_spec(spec: str) -> Tuple[str, str]:
    """Split a conda match spec into its package name and version part, without channel or build.

    ``conda-forge::numpy=1.23.5=py39h_0`` gives ``("numpy", "=1.23.5")``; ``numpy 1.23.*`` gives
    ``("numpy", "1.23.*")``; ``numpy>=1.2,<2`` gives ``("numpy", ">=1.2,<2")``.
    """
    text = spec.strip()
    if "::" in text:
        text = text.split("::", 1)[1]
    if "[" in text:
        raise SpecError(f"conda match spec {spec!r} uses [key=value] options, which pip has no form for")
    if " " in text:
        parts = text.split()
        if len(parts) > 3:
            raise SpecError(f"cannot read conda match spec {spec!r}")
        return parts[0], parts[1]
    match = re.match(r"^([A-Za-z0-9_][A-Za-z0-9_.\-]*)(.*)$", text)
    if not match:
        raise SpecError(f"cannot read conda match spec {spec!r}")
    name, version = match.group(1), match.group(2)
    if version.startswith("=") and not version.startswith("=="):
        version = "=" + version[1:].split("=", 1)[0]  # drop a build string: =1.2.3=py39_0
    return name, version


def pip_version(spec: str, version: str) -> str:
    """Translate a conda version part into a pip version specifier (empty for any version)."""
    if not version:
        return ""
    if "|" in version:
        raise SpecError(f"conda match spec {spec!r} has alternatives ('|'), which pip has no form for")
    if version.startswith("=") and not version.startswith("=="):
        # conda's "=1.2" is a prefix match: 1.2, 1.2.0, 1.2.5 ...
        return "==" + version[1:].rstrip(".*") + ".*"
    if _PLAIN_VERSION.match(version):
        if version.endswith("*"):
            return "==" + version.rstrip(".*") + ".*"
        return "==" + version
    return version


def python_pin(dependencies: List[Dependency]) -> str:
    """Return the major.minor version that the file's python dependency pins."""
    for dependency in dependencies:
        if not isinstance(dependency, str):
            continue
        name, version = split_match_spec(dependency)
        if name != "python":
            continue
        match = re.match(r"^(==?)?\s*(\d+)\.(\d+)(\.[0-9*]+)?\*?$", version)
        if not match:
            raise SpecError(f"python dependency {dependency!r} is not a single version; pin it as python=3.9")
        return f"{match.group(2)}.{match.group(3)}"
    raise SpecError("the conda file pins no python version; add a dependency such as python=3.9")


def check_python(dependencies: List[Dependency], interpreter: str) -> None:
    """Raise ``SpecError`` when the file's python pin differs from ``interpreter`` in major.minor."""
    pinned = python_pin(dependencies)
    installed = ".".join(interpreter.split(".")[:2])
    if pinned != installed:
        raise SpecError(
            f"the conda file pins python {pinned}, but the base image has Python {interpreter}; build a base "
            f"image with Python {pinned} (build-base-image.sh --suite: bullseye has 3.9, bookworm 3.11) "
            "or use INSTALLER=conda"
        )


def pip_requirements(dependencies: List[Dependency], skip: Tuple[str, ...] = ()) -> List[str]:
    """Return the pip requirement lines for ``dependencies``: the pip list first, then mapped conda specs.

    Raises ``SpecError`` listing every conda package that has no PyPI name and is not in ``skip``.
    """
    skipped = {name.lower() for name in skip}
    from_pip: List[str] = []
    from_conda: List[str] = []
    unmapped: List[str] = []
    for dependency in dependencies:
        if isinstance(dependency, dict):
            from_pip.extend(entry for entry in dependency["pip"] if entry.strip())
            continue
        name, version = split_match_spec(dependency)
        key = name.lower()
        if key in PROVIDED or key in skipped:
            continue
        if key in CONDA_ONLY:
            unmapped.append(dependency)
            continue
        if not _NAME.match(name):
            raise SpecError(f"cannot read conda match spec {dependency!r}")
        from_conda.append(CONDA_TO_PYPI.get(key, name) + pip_version(dependency, version))
    if unmapped:
        raise SpecError(
            f"no PyPI package for the conda-only dependencies {', '.join(unmapped)}; remove them from the "
            "conda file or skip them (conda_spec.py --skip NAME, build argument PIP_SKIP=\"NAME ...\")"
        )
    return from_pip + from_conda


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    requirements = commands.add_parser("requirements", help="print the pip requirements of a conda environment file")
    requirements.add_argument("conda_file", help="the conda environment file, such as conda_env.yml")
    requirements.add_argument("--python", default="%d.%d.%d" % sys.version_info[:3],
                              help="the Python version to check the file's pin against (default: this interpreter's)")
    requirements.add_argument("--skip", action="append", default=[], metavar="NAME",
                              help="a conda dependency to leave out, such as mkl (repeatable)")
    arguments = parser.parse_args(argv)
    try:
        with open(arguments.conda_file, encoding="utf-8") as handle:
            environment = parse_environment(handle.read())
        dependencies = environment["dependencies"]
        check_python(dependencies, arguments.python)
        lines = pip_requirements(dependencies, tuple(arguments.skip))
    except OSError as exc:
        print(f"error: cannot read {arguments.conda_file}: {exc.strerror}", file=sys.stderr)
        return 1
    except SpecError as exc:
        print(f"error: {arguments.conda_file}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
