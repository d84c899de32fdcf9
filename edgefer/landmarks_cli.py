"""`edgefer landmarks DATA_DIR --out CACHE`: compute the landmark cache of a dataset folder.

Light at import (argparse only); MediaPipe is loaded in `run`. Re-running the same command resumes:
only images missing from the cache are computed, and the summary covers all requested images.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", type=Path, help="dataset folder laid out as <split>/<class>/<image>")
    parser.add_argument("--out", type=Path, required=True, help="cache folder (created; resumed when it exists)")
    parser.add_argument("--face-model", type=Path, default=None, help="face_landmarker.task (default: see docs)")
    parser.add_argument(
        "--split",
        action="append",
        default=None,
        metavar="NAME",
        help="only this split (e.g. train); repeat for several; default: every split",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from edgefer.face_model import FaceModelError
    from edgefer.landmarks_cache import compute_landmarks, list_images

    try:
        relpaths = list_images(args.data_dir)
    except NotADirectoryError as exc:
        print(f"edgefer landmarks: {exc}")
        return 2
    if args.split:
        splits = set(args.split)
        present = {p.split("/", 1)[0] for p in relpaths}
        missing = sorted(splits - present)
        if missing:
            print(f"edgefer landmarks: {args.data_dir} has no split {', '.join(missing)} (it has: {', '.join(sorted(present))})")
            return 2
        relpaths = [p for p in relpaths if p.split("/", 1)[0] in splits]
    if not relpaths:
        print(f"edgefer landmarks: no images under {args.data_dir} (expected <split>/<class>/<image>)")
        return 2
    try:
        summary = compute_landmarks(
            args.data_dir, args.out, relpaths=relpaths, face_model=args.face_model, progress=not args.no_progress
        )
    except FaceModelError as exc:
        print(f"edgefer landmarks: {exc}")
        return 2
    print(f"{args.out}: {summary}")
    return 0
