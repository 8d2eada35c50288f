"""Model loading and input validation for the generated entry script.

The inference server hands ``run()`` the records of ``{"data": [...]}``. They are matched to the
model's columns by name, never by position, and converted to the training types. Input that does
not fit raises ``ScoringInputError``, which the entry script turns into a 400 answer naming the
field, the value received (truncated) and the expected form.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType

logger = logging.getLogger(__name__)

MAX_VALUE_CHARS = 60
# Header through which the entry script tells the front how many rows it scored; the front
# copies it into the request log and removes it from the answer.
ROWS_HEADER = "x-lab-rows-scored"
ERROR_CLASS_HEADER = "x-lab-error-class"
DEFAULT_MAX_ROWS = 10_000
MAX_ROWS_ENV = "LAB_MAX_ROWS"


class ScoringInputError(ValueError):
    """A request whose payload does not fit the model's input schema (HTTP 400)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field

    def to_json(self) -> dict:
        body: dict[str, Any] = {"message": str(self)}
        if self.field is not None:
            body["field"] = self.field
        return body


def shorten(value: Any) -> str:
    """Return ``value`` as JSON text cut to ``MAX_VALUE_CHARS``, for error messages."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


class RecordsParameterType(PandasParameterType):
    """A ``PandasParameterType`` for swagger that hands ``run()`` the raw records.

    The swagger document is generated from the sample DataFrame exactly as for a
    ``PandasParameterType(sample, orient="records")``. Conversion is left to
    ``ScoringModel.to_frame`` so that each failure gets a 400 naming the field instead of the
    inference server's generic 500.
    """

    def __init__(self, sample_input: pd.DataFrame):
        super().__init__(sample_input, enforce_column_type=False, enforce_shape=False, orient="records")

    def deserialize_input(self, input_data):
        return input_data


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    categories: frozenset[str] | None


class ScoringModel:
    """A registered model folder loaded for scoring (see ``lab.models`` for the layout)."""

    def __init__(self, model, columns: list[Column], classes: list[str], max_rows: int = DEFAULT_MAX_ROWS):
        self.model = model
        self.columns = columns
        self.column_names = [column.name for column in columns]
        self.classes = classes
        self.max_rows = max_rows

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> "ScoringModel":
        import joblib

        folder = Path(model_dir)
        schema = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
        model = joblib.load(folder / "model.pkl")
        columns = [
            Column(c["name"], c["type"], frozenset(c["categories"]) if c.get("categories") is not None else None)
            for c in schema["columns"]
        ]
        classes = [str(label) for label in getattr(model, "classes_", [])]
        max_rows = int(os.environ.get(MAX_ROWS_ENV, DEFAULT_MAX_ROWS))
        logger.info("loaded model from %s: %d columns, classes %s", folder, len(columns), classes)
        return cls(model, columns, classes, max_rows)

    # -- input -------------------------------------------------------------------------------

    def to_frame(self, records: Any) -> pd.DataFrame:
        """Convert ``data`` records to a DataFrame in training column order and types.

        Raises ``ScoringInputError`` for anything that is not a non-empty list of objects with
        exactly the model's columns and values of the right type.
        """
        if not isinstance(records, list):
            raise ScoringInputError(
                f"'data' must be a list of records (objects keyed by column name), got {type(records).__name__} "
                f"{shorten(records)}",
                field="data",
            )
        if not records:
            raise ScoringInputError("'data' is an empty list; send at least one record", field="data")
        if len(records) > self.max_rows:
            raise ScoringInputError(
                f"'data' has {len(records)} records, more than the limit of {self.max_rows} per request; "
                "split the batch",
                field="data",
            )
        expected = set(self.column_names)
        values: dict[str, list] = {name: [] for name in self.column_names}
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise ScoringInputError(
                    f"data[{index}] must be an object keyed by column name, got {type(record).__name__} "
                    f"{shorten(record)}; positional lists are rejected because their column order is ambiguous",
                    field=f"data[{index}]",
                )
            missing = [name for name in self.column_names if name not in record]
            if missing:
                raise ScoringInputError(
                    f"data[{index}] is missing column(s) {', '.join(repr(m) for m in missing[:5])}"
                    f"{' and more' if len(missing) > 5 else ''}; every record needs all {len(expected)} "
                    "columns of the swagger schema (send null for an unknown value)",
                    field=f"data[{index}].{missing[0]}",
                )
            unknown = [name for name in record if name not in expected]
            if unknown:
                raise ScoringInputError(
                    f"data[{index}] has unknown column(s) {', '.join(shorten(u) for u in unknown[:5])}; "
                    "the model expects only the columns of the swagger schema",
                    field=f"data[{index}].{unknown[0]}",
                )
            for column in self.columns:
                values[column.name].append(self._convert(column, record[column.name], index))
        frame = pd.DataFrame({name: values[name] for name in self.column_names})
        for column in self.columns:
            if column.type in ("integer", "float"):
                frame[column.name] = pd.to_numeric(frame[column.name]).astype("float64")
        return frame

    @staticmethod
    def _convert(column: Column, value: Any, index: int) -> Any:
        field = f"data[{index}].{column.name}"
        if value is None:
            return np.nan
        if column.type == "integer":
            if isinstance(value, bool):
                pass
            elif isinstance(value, int):
                return value
            elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
                return int(value)
            elif isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    pass
            raise ScoringInputError(
                f'column "{column.name}" expects an integer, got {shorten(value)} in data[{index}]', field=field
            )
        if column.type == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                number = float(value)
            elif isinstance(value, str):
                try:
                    number = float(value.strip())
                except ValueError:
                    number = None
            else:
                number = None
            if number is None or not math.isfinite(number):
                raise ScoringInputError(
                    f'column "{column.name}" expects a finite number, got {shorten(value)} in data[{index}]',
                    field=field,
                )
            return number
        if column.type == "boolean":
            if isinstance(value, bool):
                return value
            raise ScoringInputError(
                f'column "{column.name}" expects true or false, got {shorten(value)} in data[{index}]', field=field
            )
        if not isinstance(value, str):
            raise ScoringInputError(
                f'column "{column.name}" expects a string, got {shorten(value)} in data[{index}]', field=field
            )
        return value

    # -- scoring -----------------------------------------------------------------------------

    def predict(self, frame: pd.DataFrame) -> list:
        return [_plain(label) for label in self.model.predict(frame)]

    def predict_proba(self, frame: pd.DataFrame) -> list[dict[str, float]]:
        probabilities = self.model.predict_proba(frame)
        return [
            {label: round(float(p), 6) for label, p in zip(self.classes, row)} for row in probabilities
        ]


def _plain(value: Any) -> Any:
    """Turn numpy scalars into JSON-serializable Python values."""
    return value.item() if isinstance(value, np.generic) else value


def load_sample(model_dir: str | os.PathLike) -> pd.DataFrame:
    """Return the model's input sample (``sample.json``) as a DataFrame in training column order."""
    folder = Path(model_dir)
    schema = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
    records = json.loads((folder / "sample.json").read_text(encoding="utf-8"))["data"]
    names = [column["name"] for column in schema["columns"]]
    return pd.DataFrame(records)[names]
