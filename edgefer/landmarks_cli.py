"""`edgefer landmarks DATA_DIR --out CACHE`: compute the landmark cache of a dataset folder.

Light at import (argparse only); MediaPipe is loaded in `run`. Re-running the same command resumes:
only images missing from the cache are computed, and the summary covers all requested images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", type=Path, help="dataset folder laid out as <split>/<class>/<image>")
    parser.add_argument("--out", type=Path, default=None, help="cache folder (created; resumed when it exists)")
    parser.add_argument("--face-model", type=Path, default=None, help="face_landmarker.task (default: see docs)")
    parser.add_argument(
        "--split",
        action="append",
        default=None,
        metavar="NAME",
        help="only this split (e.g. train); repeat for several; default: every split",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--redo-uncertain",
        action="store_true",
        help="also recompute cached entries that did not come from the trusted first variant "
        "(no face, fallbacks, small faces), e.g. after the fallback policy changed",
    )
    parser.add_argument(
        "--measure-variants",
        type=int,
        default=0,
        metavar="N",
        help="instead of caching: run every presentation variant on N random images and print the "
        "found rate of each and of the fallback chain (no --out needed)",
    )
    parser.add_argument("--seed", type=int, default=1, help="sample seed for --measure-variants (default 1)")


def run(args: argparse.Namespace) -> int:
    from edgefer.face_model import FaceModelError
    from edgefer.landmarks_cache import LandmarkCacheError, compute_landmarks, list_images

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
    if args.measure_variants:
        return _measure(args, relpaths)
    if args.out is None:
        print("edgefer landmarks: --out CACHE_DIR is required (or use --measure-variants N)")
        return 2
    try:
        summary = compute_landmarks(
            args.data_dir,
            args.out,
            relpaths=relpaths,
            face_model=args.face_model,
            progress=not args.no_progress,
            redo_uncertain=args.redo_uncertain,
        )
    except (FaceModelError, LandmarkCacheError, NotADirectoryError) as exc:
        print(f"edgefer landmarks: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {summary}")
    return 0


def _measure(args: argparse.Namespace, relpaths: list[str]) -> int:
    from edgefer.landmarks_cache import measure_variants

    images, stats = measure_variants(
        args.data_dir, args.measure_variants, args.seed, relpaths, args.face_model, progress=not args.no_progress
    )
    print(f"{images} images from {args.data_dir} (seed {args.seed})")
    print("alone: the variant by itself; chain: any of the default chain up to it, unchecked;")
    print("shift px: median mean |landmark difference| to the first variant where both find a face;")
    print("policy: the default chain with its plausibility check (what the cache stores).")
    print(f"{'variant':28s} {'alone':>7s} {'chain':>7s} {'ms/img':>7s} {'shift px':>8s}")
    for s in stats:
        chain = f"{s.chain_pct:6.1f}%" if s.chain_pct is not None else "      -"
        shift = f"{s.median_shift_px:8.2f}" if s.median_shift_px is not None else "       -"
        print(f"{s.name:28s} {s.found_pct:6.1f}% {chain} {s.ms_per_image:7.1f} {shift}")
    return 0
