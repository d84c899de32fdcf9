"""`edgefer aumap IMAGE --expression EXPR --out PNG`: an image with its AU map overlaid, to check by eye.

Runs MediaPipe FaceLandmarker in IMAGE mode through `edgefer.tracking.still.StillLandmarker` (the
same landmarker and small-crop fallback chain the landmark cache uses, so what you see is what
training gets), builds the AU map of the expression in the image's own pixel frame, and writes the
image blended with it (or with the Ekman mask, `--ekman`), optionally with the region outlines.
IMAGE may also be a video file (`--frame N` picks the frame). The first face found is used.

Exit codes: 0 written; 1 the input cannot be read or holds no face; 2 bad arguments (unknown
expression, neutral, output path). Errors name the file or value at fault.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edgefer.atomic_write import atomic_path

log = logging.getLogger(__name__)


class AumapError(Exception):
    """A user-facing failure with its exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="image file (or a video file, with --frame)")
    parser.add_argument("-e", "--expression", required=True,
                        help="expression whose AUs to draw (name or index: happiness, surprise, fear, anger, "
                        "disgust, sadness; aliases such as happy, sad, angry work)")
    parser.add_argument("-o", "--out", required=True, type=Path, help="output image (PNG recommended)")
    parser.add_argument("--face-model", default=None,
                        help="face_landmarker.task (default: EDGEFER_FACE_MODEL, EDGEFER_MODELS_DIR, the cache)")
    parser.add_argument("--ekman", action="store_true", help="overlay the binary Ekman mask instead of the soft map")
    parser.add_argument("--outlines", action="store_true", help="draw each AU ellipse and its AU number")
    parser.add_argument("--ibug", action="store_true",
                        help="draw the 68 mesh points standing for iBUG-68, numbered (to check the mapping)")
    parser.add_argument("--alpha", type=float, default=0.6, help="overlay opacity in [0, 1] (default 0.6)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="resize the output by this factor, map rebuilt at that size (e.g. 4 for a 48x48 crop)")
    parser.add_argument("--frame", type=int, default=0, help="frame index when IMAGE is a video (default 0)")


def read_image(path: Path, frame: int = 0):
    """BGR uint8 image from an image file, or frame `frame` of a video file."""
    import cv2

    if not path.is_file():
        raise AumapError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is not None:
        return image
    cap = cv2.VideoCapture(str(path))
    try:
        if cap.isOpened():
            if frame < 0:
                raise AumapError(f"--frame must be >= 0, got {frame}", 2)
            if frame:
                cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
            ok, image = cap.read()
            if ok and image is not None:
                return image
            raise AumapError(f"{path}: cannot read frame {frame} of this video")
    finally:
        cap.release()
    raise AumapError(f"{path}: not an image or video OpenCV can decode")


def write_image_atomic(path: Path, image) -> None:
    """Write via a temporary file in the same folder, then rename: a failed write leaves any
    existing file at `path` intact."""
    import cv2

    suffix = path.suffix.lower()
    if not suffix:
        raise AumapError(f"--out {path}: give a file extension (.png)", 2)
    with atomic_path(path, suffix=suffix) as tmp:  # OpenCV picks the format from the suffix
        try:
            ok = cv2.imwrite(str(tmp), image)
        except cv2.error as exc:
            raise AumapError(f"--out {path}: OpenCV cannot write this format ({exc.msg.strip()})", 2) from None
        if not ok:
            raise AumapError(f"--out {path}: OpenCV cannot write this format", 2)


def make_overlay(args: argparse.Namespace):
    """The overlaid image and a one-line summary; AumapError on bad input."""
    import cv2
    import numpy as np

    from edgefer.au import au_map, ekman_mask, expression_aus
    from edgefer.au.codebook import resolve_expression
    from edgefer.au.geometry import au_ellipses, prepare_landmarks
    from edgefer.au.overlay import draw_ibug68, draw_outlines, overlay_map, overlay_mask
    from edgefer.classes import EXPRESSIONS

    try:
        index = resolve_expression(args.expression)
    except ValueError as exc:
        raise AumapError(f"--expression: {exc}", 2) from None
    if not expression_aus(index):
        raise AumapError(
            f"--expression {args.expression}: {EXPRESSIONS[index]} has no AUs, so no map; pick one of "
            f"{', '.join(e for i, e in enumerate(EXPRESSIONS) if expression_aus(i))}", 2)
    if not 0.0 <= args.alpha <= 1.0:
        raise AumapError(f"--alpha must be in [0, 1], got {args.alpha}", 2)
    if not args.scale > 0:
        raise AumapError(f"--scale must be > 0, got {args.scale}", 2)
    if args.out.resolve() == args.image.resolve():
        raise AumapError(f"--out {args.out} is the input image; refusing to overwrite it", 2)

    image = read_image(args.image, args.frame)
    from edgefer.face_model import FaceModelError
    from edgefer.tracking.still import StillLandmarker

    try:
        with StillLandmarker(args.face_model) as landmarker:
            landmarks, _variant = landmarker.detect(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    except FaceModelError as exc:
        raise AumapError(str(exc)) from None
    if landmarks is None:
        raise AumapError(f"{args.image}: no face found")

    if args.scale != 1.0:
        h, w = image.shape[:2]
        size = (max(1, round(h * args.scale)), max(1, round(w * args.scale)))
        interpolation = cv2.INTER_CUBIC if args.scale > 1 else cv2.INTER_AREA
        image = cv2.resize(image, (size[1], size[0]), interpolation=interpolation)
        landmarks = landmarks.astype(np.float64) * (size[1] / w, size[0] / h)
    size = image.shape[:2]
    if args.ekman:
        mask = ekman_mask(landmarks, index, size)
        if mask is None:
            raise AumapError(f"{args.image}: the AU regions of {EXPRESSIONS[index]} fall outside the image")
        out = overlay_mask(image, mask, args.alpha)
    else:
        amap = au_map(landmarks, index, size)
        if amap is None:
            raise AumapError(f"{args.image}: the AU regions of {EXPRESSIONS[index]} fall outside the image")
        out = overlay_map(image, amap, args.alpha)
    if args.outlines:
        prepared = prepare_landmarks(landmarks, size)
        if prepared is not None:  # usable: the map above was drawn from the same landmarks
            out = draw_outlines(out, au_ellipses(prepared, index))
    if args.ibug:
        out = draw_ibug68(out, landmarks)
    aus = ", ".join(f"{au.code} {au.name}" for au in expression_aus(index))
    summary = f"{EXPRESSIONS[index]} = {aus}"
    return out, summary


def run(args: argparse.Namespace) -> int:
    try:
        out, summary = make_overlay(args)
        write_image_atomic(args.out, out)
    except AumapError as exc:
        print(f"edgefer aumap: {exc}", file=sys.stderr)
        return exc.code
    h, w = out.shape[:2]
    print(f"wrote {args.out} ({w}x{h}): {summary}")
    return 0
