"""`edgefer bench render`: the Numba heatmap overlay against the same overlay with OpenCV calls.

Both sides draw the same thing on the same frame for the same face sizes: a model map (e.g. 12x12)
upsampled to the crop size, warped from crop space onto a rotated face, colour-mapped (TURBO) and
alpha-blended inside the crop's footprint. The OpenCV side is `edgefer.render.overlay_heatmap_opencv`
(resize, two warpAffine, applyColorMap, addWeighted, masked copy); the Numba side is
`edgefer.render.overlay_heatmap` (one fused pass). Timings are medians of repeated runs measured
interleaved in one process, so the ratio holds even when the machine is busy.
"""

from __future__ import annotations

import argparse
import statistics
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frame", default="1280x720", help="frame size WxH (default 1280x720)")
    parser.add_argument("--sizes", default="64,128,256,400", help="face sizes in frame pixels (default 64,128,256,400)")
    parser.add_argument("--crop", type=int, default=48, help="model crop size (default 48, FER2013)")
    parser.add_argument("--map", type=int, default=12, help="attention map size (default 12)")
    parser.add_argument("--angle", type=float, default=12.0, help="face roll in degrees (default 12)")
    parser.add_argument("--opacity", type=float, default=0.45)
    parser.add_argument("--colormap", default="turbo", choices=("turbo", "jet"))
    parser.add_argument("--iters", type=int, default=200, help="overlays per timing run (default 200)")
    parser.add_argument("--repeats", type=int, default=7, help="timing runs per side, interleaved (default 7)")
    parser.add_argument("--opencv-threads", type=int, default=None,
                        help="cv2.setNumThreads for the OpenCV side (default: OpenCV's own; 1 = one core like the Numba kernel)")


def _similarity(angle_deg: float, scale: float, centre: tuple[float, float], crop: int):
    import numpy as np

    a = np.deg2rad(angle_deg)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * scale
    t = np.asarray(centre) - r @ np.array([(crop - 1) / 2, (crop - 1) / 2])
    return np.hstack([r, t[:, None]])


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from edgefer import render

    try:
        fw, fh = (int(v) for v in args.frame.lower().split("x"))
        sizes = [int(v) for v in args.sizes.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(
            f"edgefer bench render: --frame must look like 1280x720 and --sizes like 64,128 (got {args.frame!r}, {args.sizes!r})"
        ) from None
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (fh, fw, 3), dtype=np.uint8), (0, 0), 2)
    heat = cv2.GaussianBlur(rng.random((args.map, args.map)).astype(np.float32), (0, 0), 1.0)
    crop = (args.crop, args.crop)
    render.warmup()  # compile (or load the cached kernels) outside the timings
    if args.opencv_threads is not None:
        cv2.setNumThreads(args.opencv_threads)

    print(f"edgefer bench render: frame {fw}x{fh}, crop {args.crop}x{args.crop}, map {args.map}x{args.map}, "
          f"roll {args.angle:g} deg, {args.colormap}, opacity {args.opacity}, {args.iters} overlays x {args.repeats} runs, "
          f"OpenCV threads {cv2.getNumThreads()}, Numba kernel single-threaded")
    print(f"{'face px':>8} {'pixels':>8} {'opencv ms':>10} {'numba ms':>9} {'speed-up':>9} {'max diff':>9} {'> 2 levels':>11}")
    ratios = []
    worst = 0
    worst_over = 0.0
    borders = 0
    for size in sizes:
        m = _similarity(args.angle, size / args.crop, (fw / 2, fh / 2), args.crop)
        ours, ref = frame.copy(), frame.copy()
        touched = render.overlay_heatmap(ours, heat, m, crop, args.opacity, args.colormap)
        mask = render.overlay_heatmap_opencv(ref, heat, m, crop, args.opacity, args.colormap)
        # Compare where both draw; the footprints may differ by a pixel or two exactly on the
        # crop's border (float rounding of the inverse mapping), counted separately.
        region = render.footprint_mask(m, crop, frame.shape)
        both = region & mask
        border = int((region ^ mask).sum())
        diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16)).max(axis=2)[both]
        max_diff = int(diff.max()) if diff.size else 0
        over = float((diff > 2).mean()) if diff.size else 0.0
        worst = max(worst, max_diff)
        worst_over = max(worst_over, over)
        borders += border

        def ms_per_call(overlay, m=m, heat=heat, crop=crop) -> float:  # this size's map, bound now
            img = frame.copy()
            t0 = time.perf_counter()
            for _ in range(args.iters):
                overlay(img, heat, m, crop, args.opacity, args.colormap)
            return (time.perf_counter() - t0) / args.iters * 1000

        nb, cv = [], []
        for _ in range(args.repeats):  # interleaved: both sides see the same machine load
            cv.append(ms_per_call(render.overlay_heatmap_opencv))
            nb.append(ms_per_call(render.overlay_heatmap))
        t_cv, t_nb = statistics.median(cv), statistics.median(nb)
        ratios.append(t_cv / t_nb)
        print(f"{size:>8} {touched:>8} {t_cv:>10.3f} {t_nb:>9.3f} {t_cv / t_nb:>8.2f}x {max_diff:>9} {over:>10.4%}")
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"speed-up Numba vs OpenCV: {geo:.2f}x geometric mean over face sizes (target >= 2x)")
    print(f"max abs difference {worst} grey level(s) (target <= 2); pixels over 2 levels: {worst_over:.4%} at most "
          f"(colour-index rounding ties); border pixels drawn by only one side: {borders}")
    return 0
