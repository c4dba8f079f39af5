"""Classification metrics, reports (JSON + Markdown) and training-curve plots."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from training.batches import predict_probabilities
from training.bundle import Bundle, BundleMetadata
from training.data import Dataset
from training.errors import DataError


def label_ids(dataset: Dataset, labels: Sequence[str]) -> np.ndarray:
    """Map a dataset's labels to the model's label ids; unknown labels are a DataError."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(dataset.labels) - index.keys())
    if unknown:
        raise DataError(
            dataset.source,
            f"labels {unknown} are not among the model's labels {list(labels)}",
        )
    return np.fromiter((index[label] for label in dataset.labels), dtype=np.int64)


def with_bundle_labels(dataset: Dataset, metadata: BundleMetadata) -> Dataset:
    """Rename raw labels (0/1) to the bundle's (negative/positive) as its training did.

    ``dataset`` is returned as it is when its labels already are among the bundle's.
    """
    if set(dataset.labels) <= set(metadata.labels):
        return dataset
    names: dict[str, str] = metadata.data.get("label_names") or {}
    return replace(dataset, labels=[names.get(label, label) for label in dataset.labels])


def classification_report(
    labels: Sequence[str], truth: np.ndarray, probabilities: np.ndarray
) -> dict[str, Any]:
    """Return accuracy, per-class precision/recall/F1, ROC-AUC and the confusion matrix."""
    from sklearn import metrics

    predicted = probabilities.argmax(axis=1)
    ids = list(range(len(labels)))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        truth, predicted, labels=ids, zero_division=0
    )
    report: dict[str, Any] = {
        "count": len(truth),
        "accuracy": float(metrics.accuracy_score(truth, predicted)),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": list(labels),  # rows: true label, columns: predicted label
            "matrix": metrics.confusion_matrix(truth, predicted, labels=ids).tolist(),
        },
        "roc_auc": None,
    }
    if len(set(truth.tolist())) == len(labels):  # AUC is undefined when a class is absent
        if len(labels) == 2:
            auc = metrics.roc_auc_score(truth, probabilities[:, 1])
        else:
            auc = metrics.roc_auc_score(truth, probabilities, multi_class="ovr", labels=ids)
        report["roc_auc"] = float(auc)
    return report


def evaluate_bundle(
    bundle: Bundle,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    probabilities: np.ndarray | None = None,
) -> dict[str, Any]:
    """Score a loaded bundle on a labelled dataset (or take its ``probabilities``); report."""
    labels = bundle.metadata.labels
    truth = label_ids(dataset, labels)
    if probabilities is None:
        probabilities = score_bundle(bundle, dataset, batch_size=batch_size)
    report = classification_report(labels, truth, probabilities)
    report["model"] = {"name": bundle.metadata.name, "version": bundle.metadata.version}
    report["data"] = dataset.source
    return report


def score_bundle(bundle: Bundle, dataset: Dataset, *, batch_size: int = 256) -> np.ndarray:
    """Return the bundle's class probabilities for every text of ``dataset``."""
    return predict_probabilities(
        bundle.model, bundle.preprocessor, dataset.texts, batch_size=batch_size, progress=True
    )


def report_markdown(report: dict[str, Any], title: str = "Evaluation report") -> str:
    """Render a report as a Markdown page."""
    auc = report.get("roc_auc")
    lines = [
        f"# {title}",
        "",
        *([f"- data: `{report['data']}`"] if report.get("data") else []),
        *[f"- {note}" for note in report.get("notes", [])],
        f"- texts: {report['count']}",
        f"- accuracy: {report['accuracy']:.4f}",
        f"- macro F1: {report['macro_f1']:.4f}",
        f"- ROC-AUC: {auc:.4f}" if auc is not None else "- ROC-AUC: n/a (a class is absent)",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, row in report["per_class"].items():
        lines.append(
            f"| {label} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} "
            f"| {row['support']} |"
        )
    matrix = report["confusion_matrix"]
    lines += ["", "Confusion matrix (rows: true, columns: predicted)", ""]
    lines.append("| | " + " | ".join(matrix["labels"]) + " |")
    lines.append("| --- |" + " ---: |" * len(matrix["labels"]))
    for label, row in zip(matrix["labels"], matrix["matrix"], strict=True):
        lines.append(f"| **{label}** | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], directory: Path, stem: str = "evaluation") -> None:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (directory / f"{stem}.md").write_text(report_markdown(report), encoding="utf-8")


def plot_history(history_csv: Path, out_png: Path) -> None:
    """Plot loss and accuracy per epoch, train vs validation, from Keras' CSVLogger file."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    with history_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for prefix, style in (("", "o-"), ("val_", "s--")):
            key = prefix + metric
            if key in rows[0]:
                axis.plot(
                    epochs,
                    [float(row[key]) for row in rows],
                    style,
                    label="validation" if prefix else "train",
                )
        axis.set_title(metric)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
