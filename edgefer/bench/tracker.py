"""`edgefer bench tracker`: FaceTracker fps vs bare MediaPipe on the same frames, in one run.

"Bare" is what any MediaPipe user writes: BGR->RGB, wrap as mp.Image, `detect_for_video` (or
`detect` in image mode), on a landmarker built with the same options. The tracker adds frame
validation, result conversion to pixel arrays, boxes and id assignment. Frames are decoded once up
front so decoding is not timed. Passes alternate (bare, tracker, tracker, bare, ...) over
`--rounds` rounds, each with a fresh landmarker (VIDEO mode needs a fresh timeline), so a busy shared
machine slows both alike; ratios are of total times.

On a shared machine the load changes between passes, so two more figures measure the tracker's
own cost without comparing passes: inside each tracker pass, the time outside MediaPipe's call as a
share of the time inside it (`FaceTracker.mediapipe_seconds`); and the post-processing alone
(conversion + boxes + ids) replayed on the bare pass's saved MediaPipe results.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

DEFAULT_VIDEO = "videos/WolfgangLanger_Pexels.mp4"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", type=Path, default=None, help=f"video file (default $EDGEFER_DATA/{DEFAULT_VIDEO})")
    parser.add_argument("--frames", type=int, default=200, help="frames to use from the start (default 200)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating timing rounds (default 4)")
    parser.add_argument("--mode", choices=("video", "image"), default="video")
    parser.add_argument("--max-faces", type=int, default=4)
    parser.add_argument("--no-blendshapes", action="store_true", help="both sides without blendshapes")
    parser.add_argument("--face-model", type=Path, default=None, help="face_landmarker.task (default: usual lookup)")


def _video_path(arg: Path | None) -> Path:
    if arg is None:
        root = os.environ.get("EDGEFER_DATA")
        if not root:
            raise SystemExit("edgefer bench tracker: pass --video FILE or set EDGEFER_DATA")
        arg = Path(root) / DEFAULT_VIDEO
    if not arg.is_file():
        raise SystemExit(f"edgefer bench tracker: video {arg} does not exist")
    return arg


def run(args: argparse.Namespace) -> int:
    import cv2

    from edgefer.tracking.ids import IdAssigner
    from edgefer.tracking.landmarker import convert_result, create_landmarker, to_mp_image
    from edgefer.tracking.tracker import FaceTracker, box_from_landmarks

    if args.frames < 1 or args.rounds < 1:
        raise SystemExit("edgefer bench tracker: need --frames >= 1 and --rounds >= 1")
    video = _video_path(args.video)
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames: list[Any] = []  # BGR uint8 images
    while len(frames) < args.frames:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"edgefer bench tracker: no frame could be decoded from {video}")
    stamps = [int(round(i * 1000.0 / fps)) for i in range(len(frames))]
    options = dict(mode=args.mode, max_faces=args.max_faces, blendshapes=not args.no_blendshapes)

    def bare_pass() -> tuple[float, list]:
        landmarker = create_landmarker(args.face_model, **options)
        results = []
        try:
            t0 = time.perf_counter()
            for frame, ts in zip(frames, stamps, strict=True):
                image = to_mp_image(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if args.mode == "video":
                    results.append(landmarker.detect_for_video(image, ts))
                else:
                    results.append(landmarker.detect(image))
            return time.perf_counter() - t0, results
        finally:
            landmarker.close()

    def tracker_pass() -> tuple[float, float, int]:
        with FaceTracker(args.face_model, **options) as tracker:
            t0 = time.perf_counter()
            faces = 0
            for frame, ts in zip(frames, stamps, strict=True):
                faces += len(tracker.process(frame, ts))
            return time.perf_counter() - t0, tracker.mediapipe_seconds, faces

    bare_total = tracker_total = post_total = inside_mp = 0.0
    faces_seen = 0
    h, w = frames[0].shape[:2]
    for r in range(args.rounds):
        order = ("bare", "tracker") if r % 2 == 0 else ("tracker", "bare")
        for which in order:
            if which == "bare":
                seconds, results = bare_pass()
                bare_total += seconds
                ids = IdAssigner()
                t0 = time.perf_counter()
                for result in results:
                    raw = convert_result(result, w, h)
                    ids.update([box_from_landmarks(f.landmarks, frames[0].shape) for f in raw])
                post_total += time.perf_counter() - t0
            else:
                seconds, mp_seconds, faces = tracker_pass()
                tracker_total += seconds
                inside_mp += mp_seconds
                faces_seen += faces
    n = len(frames) * args.rounds
    bare_fps, tracker_fps = n / bare_total, n / tracker_total
    print(f"video: {video.name}, {len(frames)} frames {w}x{h}, mode {args.mode}, {args.rounds} rounds, "
          f"{faces_seen / n:.2f} faces/frame")
    print(f"bare MediaPipe : {bare_fps:7.1f} fps")
    print(f"FaceTracker    : {tracker_fps:7.1f} fps")
    print(f"overhead, pass vs pass (time ratio - 1)       : {100.0 * (tracker_total / bare_total - 1):+.1f}%"
          "  (noisy on a shared machine)")
    print(f"overhead, within tracker passes (outside/in MP): {100.0 * (tracker_total - inside_mp) / inside_mp:.1f}%"
          f"  ({1e6 * (tracker_total - inside_mp) / n:.0f} us/frame; target < 10%)")
    print(f"post-processing replayed (convert+box+ids)     : {100.0 * post_total / bare_total:.1f}% of bare MediaPipe "
          f"time ({1e6 * post_total / n:.0f} us/frame)")
    return 0
