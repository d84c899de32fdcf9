"""Classification and interpretability metrics on plain NumPy arrays (no torch needed).

Classification: top-1 accuracy, macro-F1, per-class recall, confusion matrix (rows = true class,
columns = predicted, project class order).

Interpretability (method.md §5.1): a per-sample cosine between a heat map and the sample's AU map
A (built from the ground-truth label), averaged per class, then macro-averaged over the classes
that have maps (the six non-neutral ones; neutral has no AUs). `ekman_iou`: IoU between the heat map
binarised at a threshold after min-max normalisation and the binary Ekman mask, aggregated the same way.
Every aggregate comes with the counts behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefer.classes import EXPRESSIONS, NEUTRAL, NUM_CLASSES

EPS = 1e-8


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    labels = np.asarray(labels, np.int64)
    preds = np.asarray(preds, np.int64)
    if labels.shape != preds.shape:
        raise ValueError(f"labels {labels.shape} and predictions {preds.shape} differ in shape")
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels, preds), 1)
    return cm


def accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    labels = np.asarray(labels)
    return float((labels == np.asarray(preds)).mean()) if labels.size else float("nan")


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """Recall per true class; NaN for classes absent from the labels."""
    support = cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over the classes present in the labels (absent classes would only add noise or zeros)."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1)
    predicted = cm.sum(0)
    f1 = np.where(support + predicted > 0, 2 * tp / np.maximum(support + predicted, 1), 0.0)
    present = support > 0
    return float(f1[present].mean()) if present.any() else float("nan")


def cosine(a: np.ndarray, b: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Cosine over flattened maps; (N, ...) x (N, ...) -> (N,). NaN becomes 0 (as the reference)."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    dot = (a * b).sum(1)
    norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    out = dot / np.maximum(norm, eps)
    return np.nan_to_num(out, nan=0.0)


def minmax(maps: np.ndarray) -> np.ndarray:
    """Per-map min-max normalisation to [0, 1]; constant maps become 0 (the reference's NaN -> 0)."""
    m = np.asarray(maps, np.float64)
    flat = m.reshape(len(m), -1)
    lo = flat.min(1)[:, None]
    hi = flat.max(1)[:, None]
    span = hi - lo
    out = np.where(span > 0, (flat - lo) / np.where(span > 0, span, 1.0), 0.0)
    return out.reshape(m.shape)


def iou(pred: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, h, w) bool x (N, h, w) bool -> (N,) IoU; 0 when both are empty."""
    p = np.asarray(pred, bool).reshape(len(pred), -1)
    m = np.asarray(mask, bool).reshape(len(mask), -1)
    inter = (p & m).sum(1)
    union = (p | m).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


@dataclass
class ClassAverage:
    """A per-class mean of per-sample scores and its macro mean over classes with samples."""

    macro: float
    per_class: dict[str, float]
    counts: dict[str, int]
    n: int

    def to_dict(self) -> dict:
        return {"macro": self.macro, "per_class": self.per_class, "counts": self.counts, "n": self.n}


def class_average(scores: np.ndarray, labels: np.ndarray, exclude: tuple[int, ...] = (NEUTRAL,)) -> ClassAverage:
    """Mean score per class, then the mean over the classes that have samples (neutral excluded)."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, np.int64)
    per: dict[str, float] = {}
    counts: dict[str, int] = {}
    for c, name in enumerate(EXPRESSIONS):
        if c in exclude:
            continue
        sel = labels == c
        counts[name] = int(sel.sum())
        if sel.any():
            per[name] = float(scores[sel].mean())
    macro = float(np.mean(list(per.values()))) if per else float("nan")
    return ClassAverage(macro, per, counts, int(sum(counts.values())))


def classification_report(labels: np.ndarray, preds: np.ndarray) -> dict:
    """accuracy, macro_f1, per_class_recall (by name), confusion (list of rows), n."""
    cm = confusion_matrix(labels, preds)
    rec = per_class_recall(cm)
    return {
        "accuracy": accuracy(labels, preds),
        "macro_f1": macro_f1(cm),
        "per_class_recall": {name: (None if np.isnan(r) else float(r)) for name, r in zip(EXPRESSIONS, rec, strict=True)},
        "confusion": cm.tolist(),
        "n": int(len(labels)),
    }
