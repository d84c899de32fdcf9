"""Explanation maps of one model on aligned crops, the same way for a checkpoint and an exported model.

`ExplainModel` is the one front over both kinds: `run(crops)` gives probabilities, the attention map
(the model's own explanation) and, when available, every class's CAM; `grad_maps` gives the GradCAM
family (checkpoints only: an exported model has no gradients). `class_maps(model, crops, method)`
turns any method into (N, C, H, W) float32 maps at the crop's resolution, min-max normalised per
map to [0, 1] (C = 7 classes, or 1 for the class-agnostic attention), so every consumer (the
`explain` CLI, the study, the faithfulness curves) ranks and thresholds the same arrays.

Methods (`METHODS`):
- `attention`: channel mean of the aligned layer, upsampled as ATT-COS does (`train.evaluate`).
- `cam`, `gradcam`, `gradcam++`, `layercam`: `train.cams` at the final features, min-max at their own
  resolution, bilinear to the crop (as CAM-COS). An exported model gives `cam` when it exports the
  per-class `cam` output; the GradCAM family needs a checkpoint.
- `lime`: `train.lime` (SLIC superpixels on the crop, weighted ridge on a seeded sample budget).
- `occlusion`: the drop of each class's probability when a patch is replaced by the baseline grey,
  averaged over the patches covering a pixel (Zeiler & Fergus 2014). Patch = one attention cell of
  the input (input / attention size, 8 px at 56/7), stride = patch / 2 unless told otherwise.
LIME and occlusion are signed (evidence for and against the class); their maps keep the positive
evidence only (clipped at 0 before min-max, as LIME's own `positive_only` picture), so that a strongly
negative region does not lift every neutral pixel above the IoU threshold. The raw signed maps are
`train.lime.lime_maps` and `occlusion_maps`.

Crops are what evaluation feeds: uint8 in the model's colour ((N, H, W) gray or (N, H, W, 3) RGB) at
the contract's input size (`train.evaluate.to_crops` of the stored images). "Removed" pixels (LIME,
occlusion, deletion) take the contract's mean intensity, which is 0 after normalisation: the value
that carries the least information to the network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgefer.classes import NUM_CLASSES
from edgefer.contract import ModelContract

log = logging.getLogger(__name__)

METHODS = ("attention", "cam", "gradcam", "gradcam++", "layercam", "lime", "occlusion")
GRADIENT_METHODS = ("gradcam", "gradcam++", "layercam")


@dataclass
class Outputs:
    """probs (N, 7), attention (N, h, w), cams (N, 7, h', w') or None."""

    probs: np.ndarray
    attention: np.ndarray
    cams: np.ndarray | None


class ExplainModel:
    """A checkpoint (`train.checkpoint.load_checkpoint`) or an exported model
    (`edgefer.runtime.load_classifier`) behind one interface; build with `ExplainModel.load`."""

    def __init__(self, name: str, contract: ModelContract, *, ckpt=None, clf=None, device: str = "cpu",
                 batch_size: int = 256) -> None:
        self.name = name
        self.contract = contract
        self.ckpt = ckpt
        self.clf = clf
        self.device = device
        self.batch_size = batch_size
        self.kind = "checkpoint" if ckpt is not None else "exported"

    @classmethod
    def load(cls, path: str | Path, backend: str = "auto", device: str = "cpu", batch_size: int = 256) -> ExplainModel:
        """A `.pt`/`.pth`/`.ckpt` file is a checkpoint, anything else goes through the runtime."""
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"model {p} does not exist")
        if p.suffix in (".pt", ".pth", ".ckpt"):
            from train.checkpoint import load_checkpoint

            ckpt = load_checkpoint(p, map_location=device)
            return cls(str(p), ckpt.contract, ckpt=ckpt, device=device, batch_size=batch_size)
        from edgefer.runtime import load_classifier

        clf = load_classifier(p, backend=backend)
        return cls(str(p), clf.contract, clf=clf, batch_size=batch_size)

    @classmethod
    def from_scorer(cls, scorer) -> ExplainModel:
        """Reuse what `train.evaluate.TorchScorer` / `RuntimeScorer` already loaded."""
        if getattr(scorer, "ckpt", None) is not None:
            return cls(scorer.name, scorer.contract, ckpt=scorer.ckpt, device=str(scorer.device))
        return cls(scorer.name, scorer.contract, clf=scorer.clf)

    # --- what the model offers ----------------------------------------------------------------
    @property
    def input_size(self) -> int:
        return int(self.contract.input_size[0])

    @property
    def stored_size(self) -> int:
        if self.ckpt is not None:
            s = int(self.ckpt.config.get("data", {}).get("stored_size", 0))
        else:
            s = int(self.contract.extra.get("stored_size", 0))
        return s or self.input_size

    @property
    def color(self) -> str:
        return "gray" if self.contract.channels == 1 else "rgb"

    @property
    def has_cams(self) -> bool:
        if self.ckpt is not None:
            return True
        shape = self.clf.cam_shape
        return shape is not None and len(shape) == 3

    def methods(self) -> tuple[str, ...]:
        """The methods this model supports, in `METHODS` order."""
        out = []
        for m in METHODS:
            if m == "cam" and not self.has_cams:
                continue
            if m in GRADIENT_METHODS and self.ckpt is None:
                continue
            out.append(m)
        return tuple(out)

    def baseline(self) -> np.ndarray:
        """The 'removed' pixel value in model colour: the contract mean (0 after normalisation)."""
        return np.round(np.asarray(self.contract.mean, np.float64) * 255.0).astype(np.uint8)

    # --- forward passes -----------------------------------------------------------------------
    def _torch_input(self, crops: np.ndarray):
        import torch

        c = self.contract
        mean = torch.tensor(c.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(c.std, dtype=torch.float32).view(1, -1, 1, 1)
        x = torch.from_numpy(np.ascontiguousarray(crops)).float().div_(255.0)
        x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
        return ((x - mean) / std).to(self.device)

    def _run_one(self, crops: np.ndarray, with_cams: bool) -> Outputs:
        if self.ckpt is not None:
            import torch

            with torch.no_grad():
                x = self._torch_input(crops)
                logits, att, cams = self.ckpt.model.forward_with_cam(x)
                probs = torch.softmax(logits.float(), 1)
            return Outputs(probs.cpu().numpy(), att.float().cpu().numpy(),
                           cams.float().cpu().numpy() if with_cams else None)
        bgr = (np.repeat(crops[..., None], 3, axis=-1) if crops.ndim == 3 else crops[..., ::-1])
        out = self.clf.predict(np.ascontiguousarray(bgr))
        return Outputs(out.probs, out.attention, out.cams if with_cams else None)

    def run(self, crops: np.ndarray, with_cams: bool = True) -> Outputs:
        """Batched forward of uint8 crops in model colour (split into `batch_size` chunks)."""
        crops = self.check_crops(crops)
        parts = [self._run_one(crops[s:s + self.batch_size], with_cams and self.has_cams)
                 for s in range(0, len(crops), self.batch_size)]
        if not parts:
            raise ValueError("no crops to run")
        cams = None if parts[0].cams is None else np.concatenate([p.cams for p in parts])
        return Outputs(np.concatenate([p.probs for p in parts]), np.concatenate([p.attention for p in parts]), cams)

    def probs(self, crops: np.ndarray) -> np.ndarray:
        return self.run(crops, with_cams=False).probs

    def grad_maps(self, crops: np.ndarray, classes: np.ndarray, method: str) -> np.ndarray:
        """GradCAM-family maps (N, h', w') of `classes` at the final features (checkpoints only)."""
        if self.ckpt is None:
            raise ValueError(f"{self.name}: {method} needs gradients; give a training checkpoint (.pt), "
                             "an exported model offers attention, cam (if exported), lime and occlusion")
        import torch

        from train.cams import class_maps as torch_class_maps

        crops = self.check_crops(crops)
        out = []
        for s in range(0, len(crops), self.batch_size):
            x = self._torch_input(crops[s:s + self.batch_size])
            y = torch.as_tensor(np.asarray(classes[s:s + self.batch_size]), device=x.device)
            out.append(torch_class_maps(self.ckpt.model, x, y, method)[2].float().cpu().numpy())
        return np.concatenate(out)

    def check_crops(self, crops: np.ndarray) -> np.ndarray:
        h = self.input_size
        want = (h, h) if self.color == "gray" else (h, h, 3)
        if crops.dtype != np.uint8 or crops.shape[1:] != want:
            raise ValueError(f"{self.name}: crops must be uint8 (N, {', '.join(map(str, want))}) in the model's "
                             f"colour ({self.color}); got {crops.dtype} {crops.shape}")
        return crops


# --- maps ---------------------------------------------------------------------------------------
def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Min-max per map over the last two axes to [0, 1], float32; constant maps become 0."""
    m = np.asarray(maps, np.float64)
    lo = m.min(axis=(-2, -1), keepdims=True)
    hi = m.max(axis=(-2, -1), keepdims=True)
    span = hi - lo
    return np.where(span > 0, (m - lo) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)


def upsample(maps: np.ndarray, size: int, align_corners: bool = False) -> np.ndarray:
    """(..., h, w) -> (..., size, size) bilinear (torch semantics, as evaluation)."""
    import torch
    import torch.nn.functional as F

    lead = maps.shape[:-2]
    t = torch.from_numpy(np.ascontiguousarray(maps, np.float32)).reshape(-1, 1, *maps.shape[-2:])
    up = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=align_corners)
    return up.reshape(*lead, size, size).numpy()


def occlusion_maps(model: ExplainModel, crops: np.ndarray, patch: int | None = None,
                   stride: int | None = None, progress: bool = False) -> np.ndarray:
    """(N, 7, H, W) mean probability drop of every class when a patch covering the pixel is greyed."""
    from tqdm import tqdm

    crops = model.check_crops(crops)
    size = model.input_size
    ah = int(model.contract.attention_size[0]) or 7
    patch = int(patch or max(2, round(size / ah)))
    stride = int(stride or max(1, patch // 2))
    starts = list(range(0, max(1, size - patch) + 1, stride))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    boxes = [(y, x) for y in starts for x in starts]
    fill = model.baseline()
    base = model.probs(crops)
    out = np.zeros((len(crops), NUM_CLASSES, size, size), np.float64)
    cover = np.zeros((size, size), np.float64)
    for y, x in boxes:
        cover[y:y + patch, x:x + patch] += 1
    for i in tqdm(range(len(crops)), desc="occlusion", unit="img", disable=not progress, leave=False):
        batch = np.repeat(crops[i][None], len(boxes), axis=0)
        for k, (y, x) in enumerate(boxes):
            batch[k, y:y + patch, x:x + patch] = fill
        drop = base[i][None] - model.probs(batch)  # (B, 7)
        for k, (y, x) in enumerate(boxes):
            out[i, :, y:y + patch, x:x + patch] += drop[k][:, None, None]
    return (out / np.maximum(cover, 1)).astype(np.float32)


def class_maps(model: ExplainModel, crops: np.ndarray, method: str, *, lime_samples: int = 500,
               seed: int = 0, classes: np.ndarray | None = None, progress: bool = False,
               occlusion_patch: int | None = None, occlusion_stride: int | None = None,
               lime_region: int | None = None) -> np.ndarray:
    """Maps of `method` at the crop's resolution, min-max normalised per map.

    Returns (N, 7, H, W) for class-dependent methods and (N, 1, H, W) for `attention`. The GradCAM
    family is computed for `classes` only when given ((N,) -> (N, 1, H, W)), else for all seven
    classes (seven backward passes).
    """
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; expected one of {', '.join(METHODS)}")
    if method not in model.methods():
        raise ValueError(f"{model.name} ({model.kind}) cannot give {method!r}; it offers {', '.join(model.methods())}")
    crops = model.check_crops(crops)
    size = model.input_size
    if method == "attention":
        from train.evaluate import upsample_attention

        att = model.run(crops, with_cams=False).attention
        return normalize_maps(upsample_attention(att, size))[:, None]
    if method == "cam":
        cams = model.run(crops).cams
        assert cams is not None  # `methods()` offers cam only when the model has them
        return normalize_maps(upsample(normalize_maps(cams), size))
    if method in GRADIENT_METHODS:
        if classes is not None:
            maps = model.grad_maps(crops, np.asarray(classes), method)[:, None]
        else:
            maps = np.stack([model.grad_maps(crops, np.full(len(crops), c), method) for c in range(NUM_CLASSES)], 1)
        return normalize_maps(upsample(normalize_maps(maps), size))
    if method == "lime":
        from train.lime import lime_maps

        raw = lime_maps(model, crops, n_samples=lime_samples, seed=seed, region_size=lime_region, progress=progress)
        return normalize_maps(np.maximum(raw, 0.0))
    raw = occlusion_maps(model, crops, occlusion_patch, occlusion_stride, progress=progress)
    return normalize_maps(np.maximum(raw, 0.0))


def pick(maps: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W): each sample's map of its class (C = 1: the one map)."""
    if maps.shape[1] == 1:
        return maps[:, 0]
    return maps[np.arange(len(maps)), np.asarray(classes, np.int64)]


# --- pictures -----------------------------------------------------------------------------------
def overlay(crop: np.ndarray, heat: np.ndarray, scale: int = 4, alpha: float = 0.5) -> np.ndarray:
    """BGR uint8 picture of a crop (gray or RGB) with a [0, 1] map in JET, enlarged `scale` times."""
    bgr = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR) if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
    h, w = bgr.shape[:2]
    big = cv2.resize(bgr, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    hm = cv2.resize(np.clip(heat, 0, 1).astype(np.float32), (w * scale, h * scale), interpolation=cv2.INTER_LINEAR)
    color = cv2.applyColorMap((hm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    a = (alpha * hm)[..., None]
    return (big * (1 - a) + color * a).astype(np.uint8)
