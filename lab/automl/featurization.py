"""Featurization: column roles, input coercion, and the ColumnTransformers the estimators use.

Two featurizers exist. ``one_hot`` (median imputation, scaling, one-hot encoding) suits linear
models and random forests. ``ordinal`` (median imputation, ordinal codes with -1 for missing and
unseen categories) suits gradient-boosted trees, because they split on the codes directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

# Categories rarer than this share of rows are merged into one "infrequent" one-hot column.
ONE_HOT_MIN_FREQUENCY = 0.001
# HistGradientBoosting handles at most 255 bins per feature, so ordinal codes stop before that.
MAX_ORDINAL_CATEGORIES = 250
MISSING_CODE = -1


@dataclass(frozen=True)
class ColumnRoles:
    """The model's input columns in training order, split by how they are featurized.

    ``ignored`` columns are accepted as input but not used (constant or identifier-like columns).
    """

    columns: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    ignored: tuple[str, ...] = field(default=())

    @property
    def used(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


def roles_from_schema(schema: dict, drop: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> ColumnRoles:
    """Split the dataset schema's columns into numeric and categorical, leaving out ``drop``.

    Integer and float columns are numeric; string and boolean columns are categorical.
    """
    columns, numeric, categorical = [], [], []
    for column in schema["columns"]:
        name = column["name"]
        if name in drop:
            continue
        columns.append(name)
        if name in ignore:
            continue
        if column["type"] in ("integer", "float"):
            numeric.append(name)
        else:
            categorical.append(name)
    ignored = tuple(name for name in columns if name in ignore)
    return ColumnRoles(tuple(columns), tuple(numeric), tuple(categorical), ignored)


def prepare_frame(X, roles: ColumnRoles) -> pd.DataFrame:
    """Return the used columns of ``X`` in training order with training dtypes.

    ``X`` is a DataFrame, a list of records or a dict of columns; column order and extra columns
    do not matter. Numeric columns become float (None becomes NaN) and categorical columns become
    strings, missing values staying NaN. Raises ``ValueError`` naming missing columns or a
    non-numeric value in a numeric column.
    """
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(X)
    missing = [name for name in roles.used if name not in X.columns]
    if missing:
        raise ValueError(f"missing input columns: {', '.join(missing)}; send every column of the model's schema")
    out = {}
    for name in roles.numeric:
        try:
            out[name] = pd.to_numeric(X[name], errors="raise").astype(float)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"column {name!r} expects numbers ({exc})") from None
    for name in roles.categorical:
        series = X[name]
        out[name] = series.where(series.isna(), series.astype(str)).astype(object)
    return pd.DataFrame(out, index=X.index, columns=list(roles.used))


def build_featurizer(kind: str, roles: ColumnRoles) -> ColumnTransformer:
    """Return an unfitted ColumnTransformer; numeric outputs come first, then categorical ones."""
    numeric_steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if kind == "one_hot":
        numeric_steps.append(("scale", StandardScaler()))
        categorical = Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
            ("encode", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=ONE_HOT_MIN_FREQUENCY,
                                     sparse_output=False, dtype=np.float32)),
        ])
    elif kind == "ordinal":
        categorical = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=MISSING_CODE, encoded_missing_value=MISSING_CODE,
            max_categories=MAX_ORDINAL_CATEGORIES, dtype=np.float64,
        )
    else:
        raise ValueError(f"unknown featurizer {kind!r}; expected 'one_hot' or 'ordinal'")
    transformers = []
    if roles.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), list(roles.numeric)))
    if roles.categorical:
        transformers.append(("categorical", categorical, list(roles.categorical)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def categorical_mask(roles: ColumnRoles) -> list[bool]:
    """Return which outputs of the ``ordinal`` featurizer are category codes."""
    return [False] * len(roles.numeric) + [True] * len(roles.categorical)
