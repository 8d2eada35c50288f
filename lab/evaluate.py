"""Metrics of a registered model on a held-out file, with Azure AutoML's metric names.

Used only for final figures: nothing here feeds back into training, thresholds or model choice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics


def positive_class(classes: list[str], labels: pd.Series) -> str:
    """Return the minority class of ``labels`` (``"yes"`` in Bank Marketing)."""
    counts = labels.astype(str).value_counts()
    present = [label for label in classes if label in counts.index]
    return min(present or classes, key=lambda label: counts.get(label, 0))


def classification_metrics(y_true: pd.Series, y_pred, probabilities: np.ndarray, classes: list[str]) -> dict:
    """Return accuracy, AUC_weighted and the other figures for one labelled set, with Azure's names.

    The ``*_binary`` figures are those of the minority (positive) class.

    ``probabilities`` has shape (n_samples, n_classes), columns in the order of ``classes``.
    """
    y_true = y_true.astype(str).to_numpy()
    y_pred = np.asarray(y_pred).astype(str)
    positive = positive_class(classes, pd.Series(y_true))
    positive_index = classes.index(positive)
    if len(classes) == 2:
        auc = metrics.roc_auc_score(y_true == positive, probabilities[:, positive_index])
    else:
        auc = metrics.roc_auc_score(y_true, probabilities, average="weighted", multi_class="ovr", labels=classes)
    return {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "AUC_weighted": auc,
        "average_precision_score_weighted": metrics.average_precision_score(
            pd.get_dummies(pd.Categorical(y_true, categories=classes)).to_numpy(), probabilities, average="weighted"
        ),
        "norm_macro_recall": _norm_macro_recall(y_true, y_pred, classes),
        "precision_score_weighted": metrics.precision_score(y_true, y_pred, average="weighted", zero_division=0),
        "balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred),
        "f1_score_binary": metrics.f1_score(y_true, y_pred, pos_label=positive, average="binary")
        if len(classes) == 2 else metrics.f1_score(y_true, y_pred, average="weighted"),
        "precision_score_binary": metrics.precision_score(y_true, y_pred, pos_label=positive, zero_division=0)
        if len(classes) == 2 else metrics.precision_score(y_true, y_pred, average="weighted", zero_division=0),
        "recall_score_binary": metrics.recall_score(y_true, y_pred, pos_label=positive)
        if len(classes) == 2 else metrics.recall_score(y_true, y_pred, average="weighted"),
        "log_loss": metrics.log_loss(y_true, probabilities, labels=classes),
        "rows": int(len(y_true)),
    }


def _norm_macro_recall(y_true, y_pred, classes: list[str]) -> float:
    """Return macro recall rescaled so that chance is 0 and perfect is 1, as Azure AutoML defines it."""
    chance = 1 / len(classes)
    recall = metrics.recall_score(y_true, y_pred, average="macro", labels=classes, zero_division=0)
    return (recall - chance) / (1 - chance)


def evaluate_model(model, frame: pd.DataFrame, label: str) -> dict:
    """Score ``frame`` (features and label) with a model of the lab's contract and return its metrics."""
    X = frame.drop(columns=[label])
    classes = [str(c) for c in model.classes_]
    probabilities = model.predict_proba(X)
    predictions = model.predict(X)
    return classification_metrics(frame[label], predictions, probabilities, classes)
