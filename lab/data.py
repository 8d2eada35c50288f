"""Fetch, check and register a tabular dataset.

The default dataset is Azure's copy of the UCI Bank Marketing data (label ``y``). Any CSV with a
header row and a label column works; the sha256 is checked when the file is the official one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lab.errors import DataError
from lab.workspace import Asset, Workspace, atomic_write_json

logger = logging.getLogger(__name__)

OFFICIAL_URL = (
    "https://automlsamplenotebookdata.blob.core.windows.net/"
    "automl-sample-notebook-data/bankmarketing_train.csv"
)
OFFICIAL_FILENAME = "bankmarketing_train.csv"
OFFICIAL_SHA256 = "4c16872d76296728dad73beeecb82f251a3070a132c721639ea8b5212a8c1589"
TEST_FILENAME = "bankmarketing_test.csv"
DEFAULT_DATASET_NAME = "bankmarketing"
DEFAULT_LABEL = "y"

# Folder with bankmarketing_train.csv (and optionally bankmarketing_test.csv); when it is set,
# nothing is downloaded. CI points it at a local copy of the data.
DATA_DIR_ENV = "LAB_DATA_DIR"
CACHE_DIR_ENV = "LAB_CACHE_DIR"
SNIFF_BYTES = 64 * 1024
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class ColumnSchema:
    """One feature column as the model expects it: name, type and, for strings, the categories."""

    name: str
    type: str  # "integer", "float", "string" or "boolean"
    missing: int
    categories: tuple[str, ...] | None = None

    def to_json(self) -> dict:
        out = {"name": self.name, "type": self.type, "missing": self.missing}
        if self.categories is not None:
            out["categories"] = list(self.categories)
        return out


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "azureml-ops-lab")


def default_data_dir() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value) if value else None


def default_test_path() -> Path | None:
    """Return the held-out test file in ``LAB_DATA_DIR`` if there is one."""
    data_dir = default_data_dir()
    if data_dir and (data_dir / TEST_FILENAME).is_file():
        return data_dir / TEST_FILENAME
    return None


def resolve_source(path: str | os.PathLike | None = None, url: str | None = None) -> Path:
    """Return a local path for the training CSV.

    Order: an explicit ``path``; an explicit ``url`` (downloaded into the cache); the official
    file in ``LAB_DATA_DIR``; the official file downloaded from its address into the cache.
    """
    if path is not None:
        return Path(path)
    if url is None:
        data_dir = default_data_dir()
        if data_dir is not None:
            candidate = data_dir / OFFICIAL_FILENAME
            if not candidate.is_file():
                raise DataError(
                    f"{candidate} not found; {DATA_DIR_ENV}={data_dir} must contain {OFFICIAL_FILENAME}, "
                    f"or unset {DATA_DIR_ENV} to download it"
                )
            return candidate
        url = OFFICIAL_URL
    target = cache_dir() / (url.rstrip("/").rsplit("/", 1)[-1] or "download.csv")
    expected = OFFICIAL_SHA256 if url == OFFICIAL_URL else None
    if target.is_file() and (expected is None or sha256_of(target) == expected):
        logger.info("using cached copy %s", target)
        return target
    download(url, target, expected)
    return target


def download(url: str, target: Path, expected_sha256: str | None) -> None:
    """Download ``url`` to ``target`` via a ``.part`` file, checking the hash before the rename."""
    import requests

    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    logger.info("downloading %s to %s", url, target)
    try:
        with requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT_S) as response:
            response.raise_for_status()
            with open(part, "wb") as handle:
                for block in response.iter_content(1 << 20):
                    handle.write(block)
    except requests.RequestException as exc:
        part.unlink(missing_ok=True)
        raise DataError(
            f"download of {url} failed ({exc.__class__.__name__}: {exc}); check the network, or pass "
            f"a local copy with --path or {DATA_DIR_ENV}=FOLDER"
        ) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if expected_sha256 is not None:
        actual = sha256_of(part)
        if actual != expected_sha256:
            part.unlink(missing_ok=True)
            raise DataError(
                f"{url} downloaded with sha256 {actual}, expected {expected_sha256}; the file changed "
                "at its source or was cut short: retry, or pass a verified copy with --path"
            )
    os.replace(part, target)


def check_hash(path: Path, expected_sha256: str | None) -> str:
    """Return the file's sha256, raising ``DataError`` when it is not ``expected_sha256``.

    Without an explicit expectation, a file named like the official one must be the official one.
    """
    actual = sha256_of(path)
    if expected_sha256 is None and path.name == OFFICIAL_FILENAME:
        expected_sha256 = OFFICIAL_SHA256
    if expected_sha256 is not None and actual != expected_sha256.lower():
        if expected_sha256 == OFFICIAL_SHA256:
            hint = (
                f"if it is the official file, it is damaged: delete it and rerun `lab data` to download it again; "
                f"if it is your own file with that name, rename it or pass --sha256 {actual}"
            )
        else:
            hint = "the file changed or is not the one expected: check --sha256 or use the right file"
        raise DataError(f"{path}: sha256 is {actual}, expected {expected_sha256}; {hint}")
    return actual


def read_csv(path: str | os.PathLike, label: str = DEFAULT_LABEL) -> pd.DataFrame:
    """Read a CSV with a header row and a label column into a DataFrame.

    The delimiter (``,``, ``;``, tab or ``|``) is sniffed from the first 64 KB. Raises
    ``DataError`` with the file and the fix for a missing, empty or non-CSV file, a missing label
    column, or a label with fewer than two classes.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path, or run `lab data` without --path to download")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a CSV file; pass the file itself")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty; download it again or pass another file")
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if b"\x00" in head:
        raise DataError(f"{path}: not a CSV file (binary content); pass a comma-separated text file")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut inside a multi-byte character at the end of the sample is fine.
        if exc.start < len(head) - 4:
            raise DataError(f"{path}: not a UTF-8 text file; save it as UTF-8 CSV") from None
        text = head[: exc.start].decode("utf-8")
    delimiter = _sniff_delimiter(text)
    try:
        frame = pd.read_csv(path, sep=delimiter, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file has no header row; pass a CSV with column names in the first line") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DataError(
            f"{path}: not a valid CSV file ({first_line}); check that every row has the same fields"
        ) from None
    if frame.shape[1] < 2:
        raise DataError(
            f"{path}: not a CSV file with a header row and at least two columns (found {frame.shape[1]}); "
            "check the delimiter and the header"
        )
    if label not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:25]))
        raise DataError(f"{path}: label column {label!r} not found (columns: {shown}); pass --label COLUMN")
    if frame.empty:
        raise DataError(f"{path}: file has a header but no data rows; pass a file with data")
    frame = frame[frame[label].notna()]
    if frame[label].nunique() < 2:
        raise DataError(
            f"{path}: label column {label!r} has fewer than two classes; a classifier needs both outcomes"
        )
    return frame


def _sniff_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def infer_schema(frame: pd.DataFrame, label: str) -> list[ColumnSchema]:
    """Describe every column but the label, in file order, as the model will expect it."""
    columns = []
    for name in frame.columns:
        if name == label:
            continue
        series = frame[name]
        missing = int(series.isna().sum())
        if pd.api.types.is_bool_dtype(series):
            columns.append(ColumnSchema(name, "boolean", missing))
        elif pd.api.types.is_integer_dtype(series):
            columns.append(ColumnSchema(name, "integer", missing))
        elif pd.api.types.is_float_dtype(series):
            # A column of whole numbers with gaps is read as float; it stays an integer column.
            values = series.dropna()
            whole = len(values) > 0 and bool((values == values.round()).all())
            columns.append(ColumnSchema(name, "integer" if whole and missing else "float", missing))
        else:
            categories = tuple(sorted(series.dropna().astype(str).unique()))
            columns.append(ColumnSchema(name, "string", missing, categories))
    return columns


def class_balance(labels: pd.Series) -> dict[str, int]:
    counts = labels.astype(str).value_counts()
    return {str(key): int(counts[key]) for key in sorted(counts.index)}


def register_dataset(
    workspace: Workspace,
    path: Path,
    name: str = DEFAULT_DATASET_NAME,
    label: str = DEFAULT_LABEL,
    expected_sha256: str | None = None,
    source: str | None = None,
) -> Asset:
    """Check ``path`` and register it as a new version of dataset ``name``.

    Nothing is registered when a check fails. The CSV is copied into the workspace, so later
    steps do not depend on the original file.
    """
    path = Path(path)
    frame = read_csv(path, label)
    digest = check_hash(path, expected_sha256)
    schema = infer_schema(frame, label)
    balance = class_balance(frame[label])

    def build(folder: Path) -> dict:
        shutil.copyfile(path, folder / "data.csv")
        atomic_write_json(folder / "schema.json", {"label": label, "columns": [c.to_json() for c in schema]})
        return {
            "source": source or str(path.resolve()),
            "sha256": digest,
            "rows": int(len(frame)),
            "label": label,
            "columns": len(schema),
            "class_balance": balance,
            "minority_share": round(min(balance.values()) / sum(balance.values()), 5),
        }

    return workspace.register("datasets", name, build)


def load_dataset(asset: Asset) -> tuple[pd.DataFrame, dict]:
    """Return the registered CSV as a DataFrame, and its schema."""
    from lab.workspace import read_json

    schema = read_json(asset.path / "schema.json")
    frame = read_csv(asset.path / "data.csv", schema["label"])
    return frame, schema


def describe_sample(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.head().to_string(buffer)
    return buffer.getvalue()
