"""Learning curves of training runs: `edgefer curves RUN_DIR [RUN_DIR ...] --out curves.png`.

Why: a long run is judged by where its curve is heading, not by one number. The figure puts the
runs side by side: validation accuracy (solid) with training accuracy under augmentation (dashed) on
the left, validation ATT-COS on the right, one colour per run, from each run's `history.jsonl`
(one JSON line per epoch, written by `train.trainer`). The same reader feeds `edgefer ablate`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_history(run_dir: Path) -> list[dict]:
    """The per-epoch records of a run; a last line cut by a kill is dropped (that epoch is redone on
    resume). A folder without `history.jsonl` (no epoch finished yet) has none."""
    path = Path(run_dir) / "history.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def plot_learning_curves(runs: dict[str, list[dict]], path: Path, title: str = "") -> Path:
    """Write the figure for `runs` (label -> history records) to `path` (PNG)."""
    from train.figures import _plt

    plt = _plt()
    fig, (ax_acc, ax_cos) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (label, rows) in enumerate(runs.items()):
        if not rows:
            continue
        colour = f"C{i}"
        epochs = [r["epoch"] for r in rows]
        ax_acc.plot(epochs, [r["val_accuracy"] for r in rows], color=colour, label=f"{label} val")
        ax_acc.plot(epochs, [r["train_acc"] for r in rows], color=colour, linestyle="--", alpha=0.6,
                    label=f"{label} train (augmented)")
        ax_cos.plot(epochs, [r["val_att_cos"] for r in rows], color=colour, label=label)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(fontsize=7)
    ax_cos.set_xlabel("epoch")
    ax_cos.set_ylabel("validation ATT-COS")
    ax_cos.grid(alpha=0.3)
    ax_cos.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run folders (each with a history.jsonl), or LABEL=FOLDER")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--title", default="")


def run(args: argparse.Namespace) -> int:
    runs: dict[str, list[dict]] = {}
    for spec in args.runs:
        label, _, folder = spec.rpartition("=") if "=" in spec else ("", "", spec)
        run_dir = Path(folder)
        rows = read_history(run_dir)
        if not rows:
            print(f"edgefer curves: {run_dir / 'history.jsonl'} has no finished epoch (or does not exist)",
                  file=sys.stderr)
            return 2
        runs[label or run_dir.name] = rows
    out = plot_learning_curves(runs, Path(args.out), args.title)
    for label, rows in runs.items():
        best = max(rows, key=lambda r: r["val_accuracy"])
        print(f"{label}: {len(rows)} epochs, last val acc {rows[-1]['val_accuracy']:.4f}, "
              f"best {best['val_accuracy']:.4f} (epoch {best['epoch']}), last val ATT-COS {rows[-1]['val_att_cos']:.3f}")
    print(f"wrote {out}")
    return 0
