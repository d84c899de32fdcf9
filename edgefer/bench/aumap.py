"""`edgefer bench aumap`: AU maps per second, the Numba kernel vs the NumPy reference, side by side.

Both build the SAME maps (`edgefer.au.reference` evaluates the same soft ellipses over the whole grid
with array expressions); the bench checks they agree within `--tolerance` before it reports rates.
Landmarks are real: MediaPipe (IMAGE mode, the still-image landmarker) on a few FER2013 test crops,
then each face is re-posed by a random similarity transform (scale 0.9-1.1, roll +-10 degrees, shift
+-5% of the image) so the N maps differ, with a random non-neutral expression each.

Timing runs in interleaved rounds (each round times every implementation on the same slice) so a
busy shared machine slows them alike; the reported ratio is of total times over all rounds.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=2000, help="number of maps (default 2000)")
    parser.add_argument("--size", type=int, default=48, help="map side in pixels (default 48, FER2013's crop)")
    parser.add_argument("--images", type=Path, default=None,
                        help="folder of face images to take landmarks from (default $EDGEFER_DATA/fer2013/test)")
    parser.add_argument("--faces", type=int, default=12, help="how many images to run MediaPipe on (default 12)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default 5)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max |Numba - NumPy| allowed (default 1e-4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--face-model", default=None, help="face_landmarker.task (default: the usual lookup)")


def _image_folder(arg: Path | None) -> Path:
    if arg is not None:
        folder = arg
    else:
        root = os.environ.get("EDGEFER_DATA")
        if not root:
            raise SystemExit("edgefer bench aumap: pass --images DIR or set EDGEFER_DATA (e.g. ../shared/data)")
        folder = Path(root) / "fer2013" / "test"
    if not folder.is_dir():
        raise SystemExit(f"edgefer bench aumap: image folder {folder} does not exist")
    return folder


def real_landmarks(folder: Path, count: int, face_model: str | None):
    """(F, 478, 2) float64 landmarks, each normalised to a unit square frame (coords / image size),
    from the first images (sorted, across sub-folders) where MediaPipe finds a face."""
    import cv2
    import numpy as np

    from edgefer.media import is_image
    from edgefer.tracking.still import StillLandmarker

    files = sorted(p for p in folder.rglob("*") if is_image(p))
    if not files:
        raise SystemExit(f"edgefer bench aumap: no images under {folder}")
    step = max(1, len(files) // (count * 3))
    found = []
    with StillLandmarker(face_model) as landmarker:
        for path in files[::step]:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                continue
            pts, _ = landmarker.detect(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            if pts is not None:
                h, w = image.shape[:2]
                found.append(pts.astype(np.float64) / (w, h))
            if len(found) == count:
                break
    if not found:
        raise SystemExit(f"edgefer bench aumap: MediaPipe found no face in the images under {folder}")
    return np.stack(found)


def reposed(base, n: int, size: int, rng):
    """n landmark sets in a size x size frame: random base face, random similarity transform."""
    import numpy as np

    pick = rng.integers(0, len(base), n)
    scale = rng.uniform(0.9, 1.1, n) * size
    theta = np.radians(rng.uniform(-10.0, 10.0, n))
    shift = rng.uniform(-0.05, 0.05, (n, 2)) * size
    c, s = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (n, 2, 2)
    centred = base[pick] - 0.5
    pts = np.einsum("nij,nkj->nki", rot, centred) * scale[:, None, None]
    return pts + size / 2.0 + shift[:, None, :]


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from edgefer.au import au_map, au_maps
    from edgefer.au.reference import reference_au_map

    if args.n < 1 or args.size < 4 or args.rounds < 1:
        raise SystemExit("edgefer bench aumap: need --n >= 1, --size >= 4, --rounds >= 1")
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    base = real_landmarks(_image_folder(args.images), args.faces, args.face_model)
    t_landmarks = time.perf_counter() - t0
    lms = reposed(base, args.n, args.size, rng)
    exprs = rng.integers(1, 7, args.n)
    size = (args.size, args.size)

    t0 = time.perf_counter()
    au_maps(lms[:1], exprs[:1], size)
    au_map(lms[0], int(exprs[0]), size)
    t_first = time.perf_counter() - t0

    times = {"numba_batch": 0.0, "numba_loop": 0.0, "numpy": 0.0}
    batch = np.zeros((args.n, *size), np.float32)
    valid = np.zeros(args.n, bool)
    loop = np.zeros_like(batch)
    ref = np.zeros_like(batch)
    ref_valid = np.zeros(args.n, bool)
    for chunk in np.array_split(np.arange(args.n), args.rounds):
        t0 = time.perf_counter()
        batch[chunk], valid[chunk] = au_maps(lms[chunk], exprs[chunk], size)
        times["numba_batch"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        for i in chunk:
            m = au_map(lms[i], int(exprs[i]), size)
            if m is not None:
                loop[i] = m
        times["numba_loop"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        for i in chunk:
            m = reference_au_map(lms[i], int(exprs[i]), size)
            ref_valid[i] = m is not None
            if m is not None:
                ref[i] = m
        times["numpy"] += time.perf_counter() - t0

    diff = float(np.abs(batch - ref).max())
    diff_loop = float(np.abs(loop - ref).max())
    same_valid = bool((valid == ref_valid).all())
    ok = same_valid and diff <= args.tolerance and diff_loop <= args.tolerance

    print(f"AU maps {args.size}x{args.size}, n={args.n} ({int(valid.sum())} valid), "
          f"{len(base)} real faces re-posed, {args.rounds} interleaved rounds")
    print(f"landmarks (MediaPipe): {t_landmarks:.2f} s; first Numba call (compile or cache load): {t_first:.2f} s")
    print(f"{'implementation':<28}{'maps/s':>12}{'us/map':>10}{'vs NumPy':>10}")
    labels = {"numba_batch": "Numba au_maps (batch)", "numba_loop": "Numba au_map (per call)",
              "numpy": "NumPy reference (per call)"}
    for key, label in labels.items():
        rate = args.n / times[key]
        print(f"{label:<28}{rate:>12.0f}{1e6 / rate:>10.1f}{times['numpy'] / times[key]:>9.1f}x")
    print(f"ratio Numba batch / NumPy: {times['numpy'] / times['numba_batch']:.1f}x "
          f"(per call: {times['numpy'] / times['numba_loop']:.1f}x; target >= 5x)")
    print(f"max |Numba - NumPy|: batch {diff:.2e}, per call {diff_loop:.2e} (tolerance {args.tolerance:.0e}); "
          f"validity {'identical' if same_valid else 'DIFFERS'}")
    if not ok:
        print("FAIL: the two implementations disagree")
        return 1
    return 0
