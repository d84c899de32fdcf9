"""Evaluation figures (matplotlib, Agg backend: no display needed).

- `confusion.png`: row-normalised confusion matrix with the counts in each cell.
- `class_maps.png`: per expression (rows), like the paper's Figure 1: the mean face, the mean AU map
  A, and the model's mean attention and mean CAM of the ground-truth class (each map min-max
  normalised per image before averaging); with a second model (`--compare`) its attention and CAM
  columns sit beside the first's, so AU-aligned and plain training are compared at a glance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefer.classes import EXPRESSIONS


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(confusion: list[list[int]], path: Path, title: str = "") -> Path:
    plt = _plt()
    cm = np.asarray(confusion, np.float64)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EXPRESSIONS)), EXPRESSIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EXPRESSIONS)), EXPRESSIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({int(cm[i, j])})", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_class_maps(
    means: list[dict[str, dict[str, np.ndarray | None]]], labels: list[str], path: Path
) -> Path:
    """`means[k][class]` holds image / au_map / attention / cam means of model k (labels[k])."""
    plt = _plt()
    classes = [c for c in EXPRESSIONS if any(c in m for m in means)]
    cols: list[tuple[str, str, int]] = [("mean face", "image", 0), ("AU map A", "au_map", 0)]
    for k, name in enumerate(labels):
        cols.append((f"attention\n{name}", "attention", k))
        if any(m.get(c, {}).get("cam") is not None for m in [means[k]] for c in classes):
            cols.append((f"CAM (true class)\n{name}", "cam", k))
    fig, axes = plt.subplots(len(classes), len(cols), figsize=(1.7 * len(cols), 1.7 * len(classes) + 0.6),
                             squeeze=False)
    for r, cls in enumerate(classes):
        for col, (title, key, k) in enumerate(cols):
            ax = axes[r, col]
            ax.set_xticks([])
            ax.set_yticks([])
            entry = means[k].get(cls)
            data = None if entry is None else entry.get(key)
            if data is not None:
                if key == "image":
                    ax.imshow(data, cmap="gray")
                else:
                    if key == "au_map" and cls == "neutral":
                        data = None
                    if data is not None:
                        ax.imshow(means[0][cls]["image"], cmap="gray")
                        ax.imshow(data, cmap="jet", alpha=0.5, vmin=0, vmax=max(1e-6, float(np.max(data))))
            if data is None:
                ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            if r == 0:
                ax.set_title(title, fontsize=7)
            if col == 0:
                ax.set_ylabel(cls, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
