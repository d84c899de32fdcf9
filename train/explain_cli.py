"""`edgefer explain`: explanation maps of images or folders of images, as PNGs and .npy arrays.

    edgefer explain IMAGE_OR_DIR [...] --out DIR [--model M.onnx | --checkpoint C.pt]
        [--methods attention,cam,lime,occlusion] [--target pred|label|CLASS] [--lime-samples 500] [--seed 0]
        [--align]

Inputs are treated as aligned face crops, fed exactly as evaluation feeds a dataset (resized to the
model's stored size, then to its input: `train.evaluate.to_crops`), which is right for FER2013-style
crops. `--align` first finds the face with MediaPipe (`edgefer.tracking.still.StillLandmarker`) and cuts
the crop in the model's declared framing (`edgefer.align.Aligner`), as the runtime does for video.
For every image and method: `<stem>_<method>.png` (the crop enlarged 4x with the map in JET) and
`<stem>_<method>.npy` (the map at the crop's resolution, float32 min-max normalised to [0, 1]);
`explain.json` lists per image the prediction, the probabilities and the class explained.
`--target label` takes the class from the parent folder's name (FER2013 layout).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="images and/or folders (searched recursively)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="training checkpoint (every method)")
    src.add_argument("--model", help="exported model (attention, cam if exported, lime, occlusion)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--methods", default="",
                        help="comma-separated: attention,cam,gradcam,gradcam++,layercam,lime,occlusion "
                        "(default: all the model offers)")
    parser.add_argument("--target", default="pred",
                        help="class to explain: pred (default), label (parent folder) or a class name")
    parser.add_argument("--lime-samples", type=int, default=500, help="LIME forward passes per image (default 500)")
    parser.add_argument("--occlusion-stride", type=int, default=0, help="occlusion stride in px (default: half a patch)")
    parser.add_argument("--seed", type=int, default=0, help="seed of LIME's samples (default 0)")
    parser.add_argument("--align", action="store_true", help="detect and align the face first (photos, video frames)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many images")
    parser.add_argument("--scale", type=int, default=4, help="PNG enlargement (default 4)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="cpu")


def list_inputs(inputs: list[str]) -> list[Path]:
    """Files as given plus the images under folders (sorted); a missing path raises, naming it."""
    out: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"input {p} does not exist")
    return out


def load_crops(model, paths: list[Path], align: bool) -> tuple[np.ndarray, list[Path], list[str]]:
    """(crops in model colour at the input size, the paths that gave one, why the others did not)."""
    import cv2

    from train.datasets.base import decode_image, resize_square
    from train.evaluate import to_crops

    size = model.input_size
    crops, kept, problems = [], [], []
    landmarker = aligner = None
    if align:
        from edgefer.align import Aligner
        from edgefer.tracking.still import StillLandmarker

        landmarker = StillLandmarker()
        aligner = Aligner(model.contract.framing, (size, size))
    try:
        for p in paths:
            if align:
                bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
                if bgr is None:
                    problems.append(f"{p}: not a readable image")
                    continue
                assert landmarker is not None and aligner is not None
                marks, _ = landmarker.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                if marks is None:
                    problems.append(f"{p}: no face found")
                    continue
                crop = aligner.crop(bgr, marks).image
                crops.append(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if model.color == "gray"
                             else cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
            else:
                img = decode_image(p, model.color)
                if img is None:
                    problems.append(f"{p}: not a readable image")
                    continue
                crops.append(to_crops(resize_square(img, model.stored_size)[None], size)[0])
            kept.append(p)
    finally:
        if landmarker is not None:
            landmarker.close()
    shape = (0, size, size) if model.color == "gray" else (0, size, size, 3)
    return (np.stack(crops) if crops else np.zeros(shape, np.uint8)), kept, problems


def _targets(target: str, paths: list[Path], pred: np.ndarray) -> np.ndarray:
    from edgefer.classes import class_index

    if target == "pred":
        return pred
    if target == "label":
        out = []
        for p in paths:
            try:
                out.append(class_index(p.parent.name))
            except ValueError:
                raise ValueError(f"{p}: --target label needs the class as the parent folder's name, "
                                 f"not {p.parent.name!r}") from None
        return np.asarray(out, np.int64)
    return np.full(len(paths), class_index(target), np.int64)


def run(args: argparse.Namespace) -> int:
    import cv2

    from edgefer.atomic_write import write_text_atomically
    from edgefer.classes import EXPRESSIONS
    from edgefer.paths import default_model_path
    from train.explain import GRADIENT_METHODS, METHODS, ExplainModel, class_maps, overlay, pick

    path = args.checkpoint or args.model or str(default_model_path())
    try:
        model = ExplainModel.load(path, backend=args.backend, device=args.device)
        paths = list_inputs(args.inputs)
    except (FileNotFoundError, ValueError) as exc:
        print(f"edgefer explain: {exc}", file=sys.stderr)
        return 2
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip()) or model.methods()
    bad = [m for m in methods if m not in METHODS]
    cannot = [m for m in methods if m in METHODS and m not in model.methods()]
    if bad or cannot:
        why = f"unknown method(s) {', '.join(bad)}" if bad else f"{path} ({model.kind}) cannot give {', '.join(cannot)}"
        print(f"edgefer explain: {why}; it offers {', '.join(model.methods())}", file=sys.stderr)
        return 2
    if args.limit:
        paths = paths[: args.limit]
    crops, kept, problems = load_crops(model, paths, args.align)
    for problem in problems:
        print(f"edgefer explain: skipped {problem}", file=sys.stderr)
    if not kept:
        print("edgefer explain: no image to explain", file=sys.stderr)
        return 1
    probs = model.probs(crops)
    pred = probs.argmax(1)
    try:
        target = _targets(args.target, kept, pred)
    except ValueError as exc:
        print(f"edgefer explain: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stems = []
    seen: dict[str, int] = {}
    for p in kept:
        stem = p.stem if len(args.inputs) == 1 and Path(args.inputs[0]).is_file() else f"{p.parent.name}_{p.stem}"
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    written = 0
    for method in methods:
        maps = class_maps(model, crops, method, lime_samples=args.lime_samples, seed=args.seed,
                          classes=target if method in GRADIENT_METHODS else None, progress=True,
                          occlusion_stride=args.occlusion_stride or None)
        heat = pick(maps, target)
        tag = method.replace("+", "p")
        for i, stem in enumerate(stems):
            np.save(out / f"{stem}_{tag}.npy", heat[i].astype(np.float32))
            if not cv2.imwrite(str(out / f"{stem}_{tag}.png"), overlay(crops[i], heat[i], scale=args.scale)):
                print(f"edgefer explain: cannot write {out / f'{stem}_{tag}.png'}", file=sys.stderr)
                return 1
            written += 2
    summary = {
        "model": path, "kind": model.kind, "methods": list(methods), "target": args.target, "seed": args.seed,
        "lime_samples": args.lime_samples, "aligned": bool(args.align),
        "images": [
            {"path": str(p), "stem": s, "predicted": EXPRESSIONS[int(pred[i])], "explained": EXPRESSIONS[int(target[i])],
             "probs": {c: round(float(v), 5) for c, v in zip(EXPRESSIONS, probs[i], strict=True)}}
            for i, (p, s) in enumerate(zip(kept, stems, strict=True))
        ],
        "skipped": problems,
    }
    write_text_atomically(out / "explain.json", json.dumps(summary, indent=2))
    print(f"{len(kept)} image(s), {len(methods)} method(s): {written} files in {out}")
    return 0
