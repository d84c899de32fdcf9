"""Evaluation of a checkpoint or an exported model on a labelled split: accuracy and interpretability.

Interpretability follows the paper's definitions (method.md §5.1), at a reference resolution equal to
the model's input size (the paper's 224 was its input size too):
- A: the AU map of the ground-truth class from the image's landmarks, built directly at the reference
  size (min-max normalised in [0, 1]); samples without one (neutral, no face) are left out.
- ATT-COS: the attention map (channel mean of the aligned layer); its per-sample min and max are
  recorded, it is upsampled bilinearly (align_corners=True), clamped to [min, max] and shifted by
  -min when min < 0; cosine with A (eps 1e-8, NaN -> 0).
- CAM-COS: the CAM of the ground-truth class, min-max normalised at its own resolution (constant
  maps -> 0), upsampled bilinearly (align_corners=False), clamped to [0, 1]; cosine with A.
- Ekman IoU: the upsampled attention (as for ATT-COS) min-max normalised and binarised at
  `iou_threshold` (default 0.5), IoU with the expression's binary Ekman mask (`edgefer.au.ekman_mask`).
Per-sample scores are averaged per class, then over the six non-neutral classes; the counts behind
every figure are reported. `att_cos_ceiling` is what a perfect map at the model's attention
resolution would score (`att_cos_ceiling()`): read ATT-COS against it, not against 1.

Images are fed as the dataset stores them (resized to the model input exactly as in training): for
a dataset of aligned crops such as FER2013 this is the protocol of the paper. Landmarks come from a
landmark cache; what it lacks is computed (MediaPipe), so any labelled folder evaluates in one command.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from edgefer.classes import EXPRESSIONS
from edgefer.contract import ModelContract
from train.augment import resize_matrix, warp_image
from train.losses import upsample_as_att_cos
from train.metrics import class_average, classification_report, cosine, iou, minmax
from train.packed import PackedSplit

log = logging.getLogger(__name__)


@dataclass
class Scores:
    """Model outputs for a batch: logits (N, 7), attention (N, h, w), gt-class CAM (N, h', w') or None."""

    logits: np.ndarray
    attention: np.ndarray
    cam: np.ndarray | None


class Scorer(Protocol):
    contract: ModelContract
    name: str
    cam_note: str

    def score(self, crops: np.ndarray, labels: np.ndarray) -> Scores: ...


class TorchScorer:
    """A training checkpoint; CAMs by `train.cams` (cam, gradcam, gradcam++, layercam)."""

    def __init__(self, path: str | Path, cam_method: str = "cam", device: str = "cpu") -> None:
        from train.checkpoint import load_checkpoint

        self.ckpt = load_checkpoint(path, map_location=device)
        self.contract = self.ckpt.contract
        self.name = str(path)
        self.cam_method = cam_method
        self.device = torch.device(device)
        self.cam_note = f"{cam_method} of the ground-truth class (torch checkpoint)"
        c = self.contract
        self.mean = torch.tensor(c.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(c.std, dtype=torch.float32).view(1, -1, 1, 1)

    @property
    def stored_size(self) -> int | None:
        return int(self.ckpt.config.get("data", {}).get("stored_size", 0)) or None

    def score(self, crops: np.ndarray, labels: np.ndarray) -> Scores:
        from train.cams import class_maps

        x = torch.from_numpy(crops).float().div_(255.0)
        x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
        x = ((x - self.mean) / self.std).to(self.device)
        y = torch.from_numpy(labels).to(self.device)
        logits, att, cam = class_maps(self.ckpt.model, x, y, self.cam_method)
        return Scores(logits.float().cpu().numpy(), att.float().cpu().numpy(), cam.float().cpu().numpy())


class RuntimeScorer:
    """An exported model through `edgefer.runtime.load_classifier` (no gradients: CAM only if exported)."""

    def __init__(self, path: str | Path, backend: str = "auto") -> None:
        from edgefer.runtime import load_classifier

        self.clf = load_classifier(path, backend=backend)
        self.contract = self.clf.contract
        self.name = str(path)
        self.cam_note = "exported `cam` output of the ground-truth class"

    @property
    def stored_size(self) -> int | None:
        return int(self.contract.extra.get("stored_size", 0)) or None

    def score(self, crops: np.ndarray, labels: np.ndarray) -> Scores:
        bgr = np.stack([cv2.cvtColor(c, cv2.COLOR_GRAY2BGR) for c in crops]) if crops.ndim == 3 else crops[..., ::-1]
        out = self.clf.predict(np.ascontiguousarray(bgr))
        cam = None
        if out.cams is not None:
            cam = out.cams[np.arange(len(labels)), labels]
        return Scores(out.logits, out.attention, cam)


def to_crops(images: np.ndarray, size: int) -> np.ndarray:
    """Stored images to model-input crops, exactly as training's validation path (one bilinear warp)."""
    m = resize_matrix(images.shape[1], size)
    return np.stack([warp_image(img, m, size) for img in images]) if len(images) else images


def upsample_attention(att: np.ndarray, ref: int) -> np.ndarray:
    """Paper's ATT-COS processing on NumPy maps (`train.losses.upsample_as_att_cos`)."""
    t = torch.from_numpy(np.ascontiguousarray(att, dtype=np.float32))
    return upsample_as_att_cos(t, (ref, ref)).numpy()


def upsample_cam(cam: np.ndarray, ref: int) -> np.ndarray:
    """Paper's CAM-COS processing: min-max at native resolution (constant -> 0), bilinear
    (align_corners=False) to the reference size, clamp to [0, 1]."""
    norm = minmax(cam).astype(np.float32)
    t = torch.from_numpy(norm)
    up = F.interpolate(t[:, None], size=(ref, ref), mode="bilinear", align_corners=False)[:, 0]
    return up.clamp(0.0, 1.0).numpy()


@functools.lru_cache(maxsize=4)
def _least_squares_solver(h: int, w: int, ref: int) -> np.ndarray:
    """(h*w, ref*ref): least-squares coefficients of an (h, w) map from a flat (ref, ref) map.

    Cached: `--compare` scores a second model of the same attention size, and at 224 px with a
    28x28 map the pseudo-inverse is the expensive part.
    """
    basis = torch.eye(h * w, dtype=torch.float32).view(h * w, 1, h, w)
    up = F.interpolate(basis, size=(ref, ref), mode="bilinear", align_corners=True).view(h * w, -1).numpy()
    return np.linalg.pinv(up.T)


def att_cos_ceiling(amaps: np.ndarray, labels: np.ndarray, att_size: tuple[int, int], ref: int,
                    chunk: int = 512) -> float:
    """ATT-COS of the best map a model with this attention size could produce, approximately.

    For every A, the (h, w) map whose ATT-COS upsampling is closest to A in least squares, clipped
    at 0 (attention is a mean of post-ReLU features), scored exactly as ATT-COS. It says how much of
    a shortfall is the map's resolution and how much is the model: on FER2013 test at 56 px, 7x7
    tops out near 0.89 and 14x14 near 0.97, while the paper's 28x28 is near 1.
    """
    if not len(amaps):
        return float("nan")
    h, w = int(att_size[0]), int(att_size[1])
    solve = _least_squares_solver(h, w, ref)
    scores = np.empty(len(amaps))
    for start in range(0, len(amaps), chunk):
        block = amaps[start:start + chunk].reshape(-1, ref * ref).astype(np.float32)
        coarse = np.clip(block @ solve.T, 0.0, None).reshape(-1, h, w)
        scores[start:start + chunk] = cosine(upsample_attention(coarse, ref), amaps[start:start + chunk])
    return class_average(scores, labels).macro


@dataclass
class EvalResult:
    report: dict[str, Any]
    labels: np.ndarray
    preds: np.ndarray
    valid: np.ndarray
    #: Per-class means at the reference size for figures: name -> (mean image, mean A, mean attention, mean CAM).
    class_means: dict[str, dict[str, np.ndarray | None]] = field(default_factory=dict)


def reference_maps(split: PackedSplit, ref: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A (N, ref, ref) float32, valid (N,), Ekman masks (N, ref, ref) bool) from labels and landmarks."""
    from edgefer.au import au_maps, ekman_mask

    frame = (split.stored_size, split.stored_size)
    maps, valid = au_maps(split.landmarks, split.labels, (ref, ref), frame_size=frame)
    masks = np.zeros((len(split), ref, ref), bool)
    for i in np.flatnonzero(valid):
        m = ekman_mask(split.landmarks[i], int(split.labels[i]), (ref, ref), frame_size=frame)
        if m is None:  # au_map valid but no mask cannot happen by construction; be safe
            valid[i] = False
        else:
            masks[i] = m
    return np.clip(maps, 0.0, 1.0), valid, masks


def evaluate(
    scorer: Scorer,
    split: PackedSplit,
    ref_size: int | None = None,
    iou_threshold: float = 0.5,
    batch_size: int = 128,
    progress: bool = True,
) -> EvalResult:
    from tqdm import tqdm

    c = scorer.contract
    size = int(c.input_size[0])
    ref = int(ref_size or size)
    if c.channels == 1 and split.color != "gray" or c.channels == 3 and split.color == "gray":
        raise ValueError(f"{scorer.name} expects {c.color} input but the data was loaded as {split.color}")
    amaps, valid, masks = reference_maps(split, ref)
    n = len(split)
    preds = np.empty(n, np.int64)
    att_cos = np.zeros(n)
    cam_cos = np.zeros(n)
    att_iou = np.zeros(n)
    cam_iou = np.zeros(n)
    has_cam = True
    sums: dict[int, dict[str, np.ndarray]] = {}
    counts = np.zeros(len(EXPRESSIONS), np.int64)
    for start in tqdm(range(0, n, batch_size), desc="evaluate", unit="batch", disable=not progress, leave=False):
        sl = slice(start, min(n, start + batch_size))
        crops = to_crops(split.images[sl], size)
        labels = split.labels[sl]
        s = scorer.score(crops, labels)
        preds[sl] = s.logits.argmax(1)
        att_up = upsample_attention(s.attention, ref)
        att_cos[sl] = cosine(att_up, amaps[sl])
        att_bin = minmax(att_up) >= iou_threshold
        att_iou[sl] = iou(att_bin, masks[sl])
        cam_up = None
        if s.cam is None:
            has_cam = False
        else:
            cam_up = upsample_cam(s.cam, ref)
            cam_cos[sl] = cosine(cam_up, amaps[sl])
            cam_iou[sl] = iou(cam_up >= iou_threshold, masks[sl])
        # Per-class means for the figures (min-max normalised maps so every face weighs the same).
        att_n = minmax(att_up)
        for j, lab in enumerate(labels):
            acc = sums.setdefault(int(lab), {
                "image": np.zeros((ref, ref)), "au_map": np.zeros((ref, ref)),
                "attention": np.zeros((ref, ref)), "cam": np.zeros((ref, ref)), "n_map": np.zeros(1)})
            img = cv2.resize(crops[j], (ref, ref), interpolation=cv2.INTER_LINEAR).astype(np.float64)
            acc["image"] += img if img.ndim == 2 else img.mean(-1)
            acc["attention"] += att_n[j]
            if cam_up is not None:
                acc["cam"] += cam_up[j]
            if valid[start + j]:
                acc["au_map"] += amaps[start + j]
                acc["n_map"] += 1
            counts[lab] += 1

    labels = split.labels
    report: dict[str, Any] = classification_report(labels, preds)
    ok = valid
    att = class_average(att_cos[ok], labels[ok])
    aiou = class_average(att_iou[ok], labels[ok])
    report.update(
        att_cos=att.macro,
        att_cos_ceiling=att_cos_ceiling(amaps[ok], labels[ok], (c.attention_size[0], c.attention_size[1]), ref),
        cam_cos=class_average(cam_cos[ok], labels[ok]).macro if has_cam else None,
        ekman_iou=aiou.macro,
        n_with_map=int(ok.sum()),
        att_cos_per_class=att.per_class,
        cam_cos_per_class=class_average(cam_cos[ok], labels[ok]).per_class if has_cam else None,
        ekman_iou_per_class=aiou.per_class,
        ekman_iou_cam=class_average(cam_iou[ok], labels[ok]).macro if has_cam else None,
        n_with_map_per_class=att.counts,
        iou_threshold=iou_threshold,
        reference_size=ref,
        cam=scorer.cam_note if has_cam else "the model has no per-class CAM output; cam_cos not computed",
        classes=list(EXPRESSIONS),
        model=scorer.name,
        attention_layer=c.attention_layer,
        attention_size=list(c.attention_size),
        au_aligned=c.au_aligned,
        definitions=(
            "att_cos/cam_cos: cosine with the ground-truth AU map, mean per class then over the non-neutral "
            "classes with maps (Belharbi et al. FG 2024, §5.1 of method.md); ekman_iou: IoU of the min-max "
            f"normalised attention binarised at {iou_threshold} with the Ekman mask, aggregated the same way"
        ),
    )
    means: dict[str, dict[str, np.ndarray | None]] = {}
    for lab, acc in sorted(sums.items()):
        k = max(1, counts[lab])
        means[EXPRESSIONS[lab]] = {
            "image": acc["image"] / k,
            "au_map": acc["au_map"] / max(1.0, float(acc["n_map"][0])),
            "attention": acc["attention"] / k,
            "cam": acc["cam"] / k if has_cam else None,
        }
    return EvalResult(report, labels, preds, valid, means)


def default_landmark_dir(data_dir: Path) -> Path:
    """A per-dataset folder in the edgefer cache, keyed by the dataset's absolute path."""
    from edgefer.paths import cache_dir

    key = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    return cache_dir() / "landmarks" / f"{data_dir.resolve().name}-{key}"


def load_eval_split(
    data_dir: Path,
    split: str,
    stored_size: int,
    color: str,
    landmark_dir: Path,
    fmt: str = "folder",
    progress: bool = True,
    limit: int | None = None,
    seed: int = 0,
) -> PackedSplit:
    """A labelled split with landmarks (missing ones computed into `landmark_dir`)."""
    from train.datasets import read_entries
    from train.packed import pack_entries, stratified_limit

    if fmt == "fer2013_csv":
        from edgefer.paths import cache_dir
        from train.datasets.fer2013_csv import csv_split_name, materialize_csv

        data_dir, split, fmt = materialize_csv(data_dir, cache_dir()), csv_split_name(split), "folder"
    entries = read_entries(fmt, data_dir, split)
    if limit:
        keep = stratified_limit(np.array([e.label for e in entries]), limit, seed)
        entries = [entries[i] for i in keep]
    return pack_entries(
        entries, data_dir, split, stored_size, color, landmark_dir, compute_missing=True, cache_dir=None,
        dataset_name=data_dir.name, reader_name=fmt, progress=progress,
    )
