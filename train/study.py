"""The human-likeness study (arXiv 2401.11835) on edgefer's own models, plus faithfulness.

Per model, on one class-balanced subset of a labelled split (the same images for every model):
- accuracy, macro-F1 and per-class recall on the subset;
- per method (attention, CAM, the GradCAM family for checkpoints, LIME, occlusion), maps of the
  ground-truth class (the Ekman mask is the ground-truth expression's, as in `edgefer eval`):
  * `ekman_iou_images`: per image, the map binarised at `iou_threshold` (after min-max) against the
    image's own Ekman mask in the crop, averaged per class then over the six non-neutral classes
    (the aggregation of `edgefer eval`'s `ekman_iou`);
  * the class-mean map on the standard face layout (`train.face_warp`, piecewise-affine on the
    mesh; per-image maps are min-max normalised first so every face weighs the same), and
    `ekman_iou_mean_map`: that mean map, min-max normalised and binarised at the same threshold,
    against the Ekman mask drawn on the standard layout (the study's measure: it compared mean
    heatmaps with Ekman masks);
- faithfulness (`train.faithfulness`): deletion and insertion areas per method and for a random map,
  for the class the model predicts.
Across models, per method: the normalised (Pearson) correlation between models' class-mean maps on
the standard layout (the six non-neutral classes concatenated, pixels every model covers), and its
average-linkage dendrogram on 1 - r (`average_linkage`; no SciPy needed).
Figures: per method a class x model grid of mean maps over the mean warped face with the standard
Ekman mask's outline, the correlation matrix with its dendrogram, and the mean faithfulness curves.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.classes import EXPRESSIONS, NEUTRAL

log = logging.getLogger(__name__)


# --- clustering -----------------------------------------------------------------------------------
def average_linkage(dist: np.ndarray) -> list[tuple[int, int, float, int]]:
    """UPGMA on a symmetric distance matrix: merges (a, b, height, size) in SciPy's linkage format
    (clusters 0..n-1 are the leaves, the k-th merge creates cluster n + k)."""
    d = np.asarray(dist, np.float64)
    n = len(d)
    if d.shape != (n, n):
        raise ValueError(f"distance matrix must be square, got {d.shape}")
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    merges: list[tuple[int, int, float, int]] = []
    next_id = n
    while len(members) > 1:
        ids = sorted(members)
        best = (np.inf, -1, -1)
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                h = float(d[np.ix_(members[a], members[b])].mean())
                if h < best[0]:
                    best = (h, a, b)
        h, a, b = best
        members[next_id] = members.pop(a) + members.pop(b)
        merges.append((a, b, h, len(members[next_id])))
        next_id += 1
    return merges


def leaf_order(merges: list[tuple[int, int, float, int]], n: int) -> list[int]:
    if n == 1:
        return [0]

    def walk(c: int) -> list[int]:
        if c < n:
            return [c]
        a, b, _, _ = merges[c - n]
        return walk(a) + walk(b)

    return walk(n + len(merges) - 1)


def correlation_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pearson correlation between rows (normalised cross-correlation of zero-mean maps)."""
    v = np.asarray(vectors, np.float64)
    v = v - v.mean(1, keepdims=True)
    norm = np.linalg.norm(v, axis=1)
    r = (v @ v.T) / np.maximum(np.outer(norm, norm), 1e-12)
    return np.clip(r, -1.0, 1.0)


# --- data -----------------------------------------------------------------------------------------
def balanced_entries(data_dir: Path, split: str, per_class: int, seed: int, fmt: str = "folder"):
    """Up to `per_class` entries of every class, drawn with a seeded generator, sorted by relpath."""
    from train.datasets import read_entries

    entries = read_entries(fmt, data_dir, split)
    labels = np.array([e.label for e in entries])
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for c in range(len(EXPRESSIONS)):
        idx = np.flatnonzero(labels == c)
        if len(idx):
            keep.extend(rng.choice(idx, size=min(per_class, len(idx)), replace=False).tolist())
    return [entries[i] for i in sorted(keep)]


def load_split(entries, data_dir: Path, split: str, stored: int, color: str, landmark_dir: Path, fmt: str):
    from train.packed import pack_entries

    return pack_entries(entries, data_dir, split, stored, color, landmark_dir, compute_missing=True, cache_dir=None,
                        dataset_name=data_dir.name, reader_name=fmt, progress=False)


# --- one model ------------------------------------------------------------------------------------
def study_model(model, split, warp, methods: tuple[str, ...], *, iou_threshold: float = 0.5, lime_samples: int = 100,
                steps: int = 10, seed: int = 0, faithfulness: bool = True, progress: bool = True,
                occlusion_stride: int | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(report, arrays): arrays hold `<method>` -> (7, S, S) class-mean maps on the standard layout,
    `face` -> (7, S, S) mean warped faces, `coverage` -> (7, S, S)."""
    from tqdm import tqdm

    from edgefer.au import ekman_mask
    from train.evaluate import to_crops
    from train.explain import GRADIENT_METHODS, class_maps, normalize_maps, pick
    from train.faithfulness import faithfulness_report
    from train.metrics import class_average, classification_report, iou

    size = model.input_size
    crops = to_crops(split.images, size)
    labels = split.labels.astype(np.int64)
    probs = model.probs(crops)
    pred = probs.argmax(1)
    report: dict[str, Any] = classification_report(labels, pred)
    lms = split.landmarks * (size / split.stored_size)
    has_lm = np.isfinite(lms).all(axis=(1, 2))
    masks = np.zeros((len(labels), size, size), bool)
    valid = np.zeros(len(labels), bool)
    for i in np.flatnonzero(has_lm & (labels != NEUTRAL)):
        m = ekman_mask(lms[i], int(labels[i]), (size, size))
        if m is not None:
            masks[i], valid[i] = m, True
    s = warp.size
    std_masks = {c: ekman_mask(warp.standard_landmarks(), c, (s, s)) for c in range(len(EXPRESSIONS))}
    # The mean face per class, warped (for the figure's background).
    face_sum = np.zeros((len(EXPRESSIONS), s, s))
    cov_sum = np.zeros((len(EXPRESSIONS), s, s))
    gray = crops if crops.ndim == 3 else crops.mean(-1)
    warps = {}
    for i in np.flatnonzero(has_lm):
        warps[i] = warp.source_coords(lms[i], size)
    import cv2

    ones = np.ones((size, size), np.float32)
    cover = {}
    for i, (mx, my) in warps.items():
        cov = cv2.remap(ones, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        cover[i] = cov
        face = cv2.remap(gray[i].astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        face_sum[labels[i]] += face * cov
        cov_sum[labels[i]] += cov
    arrays: dict[str, np.ndarray] = {"face": face_sum / np.maximum(cov_sum, 1e-6), "coverage": cov_sum}

    per_method: dict[str, Any] = {}
    pred_maps: dict[str, np.ndarray] = {}
    for method in tqdm(methods, desc=f"maps {Path(model.name).name}", unit="method", disable=not progress, leave=False):
        if method in GRADIENT_METHODS:
            gt = class_maps(model, crops, method, classes=labels)[:, 0]
            pred_maps[method] = class_maps(model, crops, method, classes=pred)
        else:
            full = class_maps(model, crops, method, lime_samples=lime_samples, seed=seed, progress=progress,
                              occlusion_stride=occlusion_stride)
            gt = pick(full, labels)
            pred_maps[method] = pick(full, pred)[:, None]
            del full
        scores = iou(gt >= iou_threshold, masks)
        img_iou = class_average(scores[valid], labels[valid])
        mean_sum = np.zeros((len(EXPRESSIONS), s, s))
        for i, (mx, my) in warps.items():
            w = cv2.remap(gt[i], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            mean_sum[labels[i]] += w * cover[i]
        mean_maps = mean_sum / np.maximum(cov_sum, 1e-6)
        arrays[method] = mean_maps.astype(np.float32)
        norm = normalize_maps(mean_maps)
        mm_iou = {}
        for c in range(len(EXPRESSIONS)):
            target = std_masks[c]
            if c == NEUTRAL or target is None or cov_sum[c].max() == 0:
                continue
            mm_iou[EXPRESSIONS[c]] = float(iou((norm[c] >= iou_threshold)[None], target[None])[0])
        per_method[method] = {
            "ekman_iou_images": img_iou.macro,
            "ekman_iou_images_per_class": img_iou.per_class,
            "ekman_iou_mean_map": float(np.mean(list(mm_iou.values()))) if mm_iou else None,
            "ekman_iou_mean_map_per_class": mm_iou,
        }
    report["methods"] = per_method
    report["n_with_mask"] = int(valid.sum())
    report["n_with_landmarks"] = int(has_lm.sum())
    if faithfulness:
        report["faithfulness"] = faithfulness_report(model, crops, methods, steps=steps, seed=seed,
                                                     lime_samples=lime_samples, progress=progress,
                                                     maps_by_method=pred_maps)
    return report, arrays


# --- figures --------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_grid(method: str, names: list[str], arrays: list[dict[str, np.ndarray]], std_masks: dict[int, Any],
              path: Path) -> Path:
    """Rows: classes; columns: models; the class-mean map over the mean warped face, Ekman outline."""
    from train.explain import normalize_maps

    plt = _plt()
    fig, axes = plt.subplots(len(EXPRESSIONS), len(names), figsize=(1.6 * len(names) + 0.8, 1.6 * len(EXPRESSIONS) + 0.5),
                             squeeze=False)
    for r, cls in enumerate(EXPRESSIONS):
        for k, name in enumerate(names):
            ax = axes[r, k]
            ax.set_xticks([])
            ax.set_yticks([])
            a = arrays[k]
            if method in a and a["coverage"][r].max() > 0:
                ax.imshow(a["face"][r], cmap="gray")
                ax.imshow(normalize_maps(a[method][r][None])[0], cmap="jet", alpha=0.5, vmin=0, vmax=1)
                m = std_masks.get(r)
                if m is not None:
                    ax.contour(m.astype(float), levels=[0.5], colors="white", linewidths=0.7)
            else:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            if r == 0:
                ax.set_title(name, fontsize=7)
            if k == 0:
                ax.set_ylabel(cls, fontsize=8)
    fig.suptitle(f"{method}: true-class mean map\non the standard face (white: Ekman mask)", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_correlation(method: str, names: list[str], matrix: np.ndarray, merges, path: Path) -> Path:
    plt = _plt()
    n = len(names)
    order = leaf_order(merges, n)
    fig, (ax_d, ax_m) = plt.subplots(1, 2, figsize=(4 + 0.5 * n, 2.5 + 0.35 * n), gridspec_kw={"width_ratios": [1, 2]})
    # Dendrogram: leaves on the y axis in `order`, merge heights (1 - r) on x.
    pos = {leaf: float(i) for i, leaf in enumerate(order)}
    height = {leaf: 0.0 for leaf in range(n)}
    for k, (a, b, h, _) in enumerate(merges):
        for c in (a, b):
            ax_d.plot([height[c], h], [pos[c], pos[c]], color="k", lw=1)
        ax_d.plot([h, h], [pos[a], pos[b]], color="k", lw=1)
        pos[n + k] = (pos[a] + pos[b]) / 2
        height[n + k] = h
    ax_d.set_yticks(range(n), [names[i] for i in order], fontsize=7)
    ax_d.set_ylim(-0.5, n - 0.5)
    ax_d.invert_xaxis()
    ax_d.invert_yaxis()
    ax_d.set_xlabel("1 - r (average linkage)", fontsize=7)
    m = matrix[np.ix_(order, order)]
    im = ax_m.imshow(m, cmap="viridis", vmin=min(0.0, float(m.min())), vmax=1)
    ax_m.set_xticks(range(n), [names[i] for i in order], rotation=45, ha="right", fontsize=7)
    ax_m.set_yticks([])
    for i in range(n):
        for j in range(n):
            ax_m.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w" if m[i, j] < 0.6 else "k")
    fig.colorbar(im, ax=ax_m, fraction=0.046)
    fig.suptitle(f"{method}: normalised correlation of class-mean maps", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_faithfulness(names: list[str], reports: list[dict[str, Any]], path: Path) -> Path | None:
    plt = _plt()
    rows = [(n, r["faithfulness"]) for n, r in zip(names, reports, strict=True) if "faithfulness" in r]
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), 2, figsize=(8, 2.6 * len(rows)), squeeze=False)
    for k, (name, f) in enumerate(rows):
        x = np.linspace(0, 1, int(f["steps"]) + 1)
        for j, kind in enumerate(("deletion", "insertion")):
            ax = axes[k, j]
            for method, v in f.items():
                if isinstance(v, dict):
                    ax.plot(x, v[f"{kind}_curve"], label=f"{method} ({v[f'{kind}_auc']:.3f})",
                            ls="--" if method == "random" else "-")
            ax.set_title(f"{name}: {kind}", fontsize=8)
            ax.set_xlabel("fraction of pixels", fontsize=7)
            ax.set_ylabel("p(predicted class)", fontsize=7)
            ax.legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- the whole study ------------------------------------------------------------------------------
def display_names(paths: list[str]) -> list[str]:
    names = [Path(p).name for p in paths]
    if len(set(names)) < len(names):
        names = [f"{Path(p).parent.name}/{Path(p).name}" for p in paths]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


def run_study(model_paths: list[str], data_dir: Path, out_dir: Path, *, split: str = "test", per_class: int = 50,
              landmark_dir: Path, methods: tuple[str, ...] | None = None, fmt: str = "folder", lime_samples: int = 100,
              steps: int = 10, iou_threshold: float = 0.5, size: int = 64, seed: int = 0, faithfulness: bool = True,
              backend: str = "auto", device: str = "cpu", occlusion_stride: int | None = None,
              progress: bool = True) -> dict[str, Any]:
    from edgefer.atomic_write import write_text_atomically
    from edgefer.au import ekman_mask
    from train.explain import ExplainModel
    from train.face_warp import FaceWarp

    models = [ExplainModel.load(p, backend=backend, device=device) for p in model_paths]
    names = display_names(model_paths)
    entries = balanced_entries(data_dir, split, per_class, seed, fmt)
    log.info("study: %d models on %d images of %s/%s", len(models), len(entries), data_dir, split)
    warp = None
    reports: list[dict[str, Any]] = []
    arrays: list[dict[str, np.ndarray]] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, model in zip(names, models, strict=True):
        data = load_split(entries, data_dir, split, model.stored_size, model.color, landmark_dir, fmt)
        if warp is None:
            warp = FaceWarp.from_landmarks(data.landmarks, data.stored_size, size)
        wanted = tuple(m for m in (methods or model.methods()) if m in model.methods())
        skipped = [m for m in (methods or ()) if m not in model.methods()]
        if skipped:
            log.warning("%s (%s) cannot give %s; skipped for it", name, model.kind, ", ".join(skipped))
        rep, arr = study_model(model, data, warp, wanted, iou_threshold=iou_threshold, lime_samples=lime_samples,
                               steps=steps, seed=seed, faithfulness=faithfulness, progress=progress,
                               occlusion_stride=occlusion_stride)
        rep.update(path=str(model.name), kind=model.kind, au_aligned=model.contract.au_aligned,
                   backbone=model.contract.backbone, landmark_counts=data.meta.get("landmark_counts"))
        reports.append(rep)
        arrays.append(arr)
        for key, a in arr.items():
            np.save(out_dir / f"mean_{len(reports) - 1}_{key.replace('+', 'pp')}.npy", a)
    assert warp is not None
    s = warp.size
    std_masks = {c: ekman_mask(warp.standard_landmarks(), c, (s, s)) for c in range(len(EXPRESSIONS))}
    non_neutral = [c for c in range(len(EXPRESSIONS)) if c != NEUTRAL]
    correlation: dict[str, Any] = {}
    figures: list[str] = []
    all_methods = [m for m in ("attention", "cam", "gradcam", "gradcam++", "layercam", "lime", "occlusion")
                   if any(m in a for a in arrays)]
    for method in all_methods:
        figures.append(str(plot_grid(method, names, arrays, std_masks, out_dir / f"grid_{method.replace('+', 'p')}.png")))
        having = [k for k, a in enumerate(arrays) if method in a]
        if len(having) < 2:
            continue
        common = np.ones((len(non_neutral), s, s), bool)
        for k in having:
            common &= arrays[k]["coverage"][non_neutral] > 0
        vecs = np.stack([arrays[k][method][non_neutral][common] for k in having])
        r = correlation_matrix(vecs)
        merges = average_linkage(1.0 - r)
        correlation[method] = {
            "models": [names[k] for k in having],
            "matrix": r.round(4).tolist(),
            "linkage": [[int(a), int(b), round(float(h), 4), int(n)] for a, b, h, n in merges],
            "order": [names[having[i]] for i in leaf_order(merges, len(having))],
        }
        figures.append(str(plot_correlation(method, [names[k] for k in having], r, merges,
                                            out_dir / f"correlation_{method.replace('+', 'p')}.png")))
    f = plot_faithfulness(names, reports, out_dir / "faithfulness.png")
    if f is not None:
        figures.append(str(f))
    report = {
        "models": dict(zip(names, reports, strict=True)),
        "correlation": correlation,
        "data": str(data_dir),
        "split": split,
        "n": len(entries),
        "per_class": per_class,
        "settings": {
            "iou_threshold": iou_threshold, "lime_samples": lime_samples, "faithfulness_steps": steps,
            "standard_size": size, "seed": seed, "landmarks": str(landmark_dir), "occlusion_stride": occlusion_stride,
            "explained_class": "ground truth for the Ekman IoUs and the mean maps; predicted for faithfulness",
        },
        "figures": figures,
    }
    write_text_atomically(out_dir / "study.json", json.dumps(report, indent=2))
    return report


# --- CLI ------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", required=True, help="checkpoints (.pt) and/or exported models (.onnx)")
    parser.add_argument("--data", help="dataset root (default: $EDGEFER_DATA/fer2013)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--format", default="folder", choices=("folder", "rafdb", "affectnet"))
    parser.add_argument("--per-class", type=int, default=50, help="images per class (seeded draw; default 50)")
    parser.add_argument("--landmarks", help="landmark cache (default: as `edgefer eval`); missing entries are computed")
    parser.add_argument("--methods", help="comma-separated subset of attention,cam,gradcam,gradcam++,layercam,lime,occlusion "
                        "(default: every method each model supports)")
    parser.add_argument("--lime-samples", type=int, default=100, help="LIME forward passes per image (default 100)")
    parser.add_argument("--steps", type=int, default=10, help="deletion/insertion steps (default 10)")
    parser.add_argument("--occlusion-stride", type=int, default=0, help="occlusion stride in px (default: half a patch)")
    parser.add_argument("--iou-threshold", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=64, help="side of the standard face layout in px")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-faithfulness", action="store_true", help="skip the deletion/insertion curves")
    parser.add_argument("--out", required=True, help="folder for study.json, figures and mean maps (.npy)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="cpu")


def _fmt(v) -> str:
    return "  n/a" if v is None else f"{v:.3f}"


def print_table(report: dict[str, Any]) -> None:
    print(f"{'model':28s} {'method':10s} {'acc':>6s} {'IoU img':>8s} {'IoU mean':>9s} {'del AUC':>8s} {'ins AUC':>8s}")
    for name, r in report["models"].items():
        f = r.get("faithfulness", {})
        for method, m in r["methods"].items():
            fm = f.get(method, {})
            print(f"{name[-28:]:28s} {method:10s} {r['accuracy']:6.3f} {_fmt(m['ekman_iou_images']):>8s} "
                  f"{_fmt(m['ekman_iou_mean_map']):>9s} {_fmt(fm.get('deletion_auc')):>8s} {_fmt(fm.get('insertion_auc')):>8s}")
        if "random" in f:
            print(f"{name[-28:]:28s} {'random':10s} {r['accuracy']:6.3f} {'':>8s} {'':>9s} "
                  f"{_fmt(f['random']['deletion_auc']):>8s} {_fmt(f['random']['insertion_auc']):>8s}")


def run(args: argparse.Namespace) -> int:
    from edgefer.paths import data_root
    from train.config import expand_path
    from train.evaluate import default_landmark_dir

    root = data_root()
    if args.data:
        data_dir = expand_path(args.data)
    elif root is not None:
        data_dir = root / "fer2013"
    else:
        print("edgefer study: say which dataset with --data DIR", file=sys.stderr)
        return 2
    if not data_dir.is_dir():
        print(f"edgefer study: dataset {data_dir} does not exist", file=sys.stderr)
        return 2
    methods = None
    if args.methods:
        from train.explain import METHODS

        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        bad = [m for m in methods if m not in METHODS]
        if bad:
            print(f"edgefer study: unknown method(s) {', '.join(bad)}; expected {', '.join(METHODS)}", file=sys.stderr)
            return 2
    landmark_dir = expand_path(args.landmarks) if args.landmarks else default_landmark_dir(data_dir)
    try:
        report = run_study(args.models, data_dir, expand_path(args.out), split=args.split, per_class=args.per_class,
                           landmark_dir=landmark_dir, methods=methods, fmt=args.format, lime_samples=args.lime_samples,
                           steps=args.steps, iou_threshold=args.iou_threshold, size=args.size, seed=args.seed,
                           faithfulness=not args.no_faithfulness, backend=args.backend, device=args.device,
                           occlusion_stride=args.occlusion_stride or None)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        print(f"edgefer study: {exc}", file=sys.stderr)
        return 2
    print_table(report)
    for method, c in report["correlation"].items():
        print(f"correlation ({method}): order {' | '.join(c['order'])}; matrix {c['matrix']}")
    print(f"n = {report['n']} images ({report['per_class']} per class at most); report: {Path(args.out) / 'study.json'}")
    return 0
