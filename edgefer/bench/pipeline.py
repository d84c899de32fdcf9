"""`edgefer bench pipeline`: end-to-end fps with recording on, against bare MediaPipe, in one run.

Bare MediaPipe is the floor no FER pipeline can beat on the same machine: the same landmarker
(same model file, VIDEO mode, same number of faces, no blendshapes), on the same frames, decoded
once up front (so decoding is not timed), BGR->RGB + mp.Image + `detect_for_video` and nothing
else. The pipeline run does everything `edgefer run --headless --record ... --csv ...` does:
decode, track with ids, align, classify (one batched call per frame), smooth, render the heatmap
overlay and labels, encode the annotated video and write the rows, on its threads. The ratio
pipeline fps / bare fps says what the whole application costs on top of face landmarking
(target >= 0.75). Rounds alternate (bare, pipeline, pipeline, bare, ...) so a busy machine slows
both alike; each side's fps is its total frames over its total time. Because an oversubscribed
machine gives a multi-threaded process a larger CPU share than a single-threaded loop, the CPU time
per frame (all threads, `time.process_time`) is printed too: it does not depend on the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", type=Path, required=True,
                        help="video file (e.g. $EDGEFER_DATA/videos/WolfgangLanger_Pexels.mp4)")
    parser.add_argument("--model", type=Path, default=None, help="ONNX model or engine (default: the shipped model)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--frames", type=int, default=300, help="frames per pass; a shorter video is looped (default 300)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2: bare, pipeline, pipeline, bare)")
    parser.add_argument("--max-faces", type=int, default=4)
    parser.add_argument("--face-model", type=Path, default=None, help="face_landmarker.task (default: usual lookup)")
    parser.add_argument("--out", type=Path, default=None, help="keep the recording and CSV here (default: a temp folder)")


def _decode(path: Path, n: int):
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SystemExit(f"edgefer bench pipeline: cannot open {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames: list[Any] = []  # BGR uint8 images
    while len(frames) < n:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    if not frames:
        raise SystemExit(f"edgefer bench pipeline: no frame decodes from {path}")
    unique = len(frames)
    while len(frames) < n:  # loop a short clip (the GIF) like the pipeline's --loop does
        frames.append(frames[len(frames) % unique])
    return frames, fps, unique


def _bare_pass(frames, fps: float, face_model, max_faces: int) -> tuple[float, float, int]:
    """Wall and CPU seconds from the first frame done to the last (as the pipeline's), faces found."""
    import cv2

    from edgefer.tracking.landmarker import create_landmarker, to_mp_image

    lm = create_landmarker(face_model, mode="video", max_faces=max_faces, blendshapes=False, min_confidence=0.5)
    faces = 0
    try:
        t_first: float | None = None
        c_first = 0.0
        for i, img in enumerate(frames):
            rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            result = lm.detect_for_video(to_mp_image(rgb), int(round(i * 1000.0 / fps)))
            faces += len(result.face_landmarks)
            if t_first is None:
                t_first = time.perf_counter()
                c_first = time.process_time()
        if t_first is None:
            return 0.0, 0.0, 0
        span = time.perf_counter() - t_first
        cpu = time.process_time() - c_first
    finally:
        lm.close()
    return span, cpu, faces


def _pipeline_pass(args, n: int, loop: bool, out: Path, k: int):
    from edgefer.pipeline.runner import Pipeline
    from edgefer.pipeline.settings import PipelineSettings

    settings = PipelineSettings(
        source=str(args.source),
        model=args.model,
        backend=args.backend,
        face_model=args.face_model,
        max_faces=args.max_faces,
        headless=True,
        max_frames=n,
        capture={"loop": loop},
        record={"path": out / f"bench_{k}.mp4"},
        csv=out / f"bench_{k}.csv",
    )
    errors = []
    cpu_marks: list[float] = []

    def on_result(_r) -> None:  # process CPU time (all threads) at the first and the last frame out
        now = time.process_time()
        if not cpu_marks:
            cpu_marks.append(now)
        elif len(cpu_marks) == 1:
            cpu_marks.append(now)
        else:
            cpu_marks[1] = now

    with Pipeline(settings, on_result=on_result, on_event=lambda e: errors.append(e) if e.kind == "error" else None) as p:
        p.start()
        p.wait()
    if errors:
        raise SystemExit(f"edgefer bench pipeline: the pipeline reported {errors[0]}")
    return p.stats(), cpu_marks[-1] - cpu_marks[0]


def run(args: argparse.Namespace) -> int:
    from edgefer.pipeline.runner import PipelineError

    if args.frames < 2 or args.rounds < 1:
        raise SystemExit("edgefer bench pipeline: need --frames >= 2 and --rounds >= 1")
    if not args.source.is_file():
        raise SystemExit(f"edgefer bench pipeline: source {args.source} does not exist")
    frames, fps, unique = _decode(args.source, args.frames)
    n = len(frames)
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="edgefer-bench-")
        out = Path(tmp.name)
    else:
        out = args.out
        out.mkdir(parents=True, exist_ok=True)
    print(f"edgefer bench pipeline: {args.source.name}, {n} frames per pass ({unique} distinct, "
          f"{frames[0].shape[1]}x{frames[0].shape[0]}), {args.rounds} round(s), {os.cpu_count()} CPU(s), "
          f"load average {os.getloadavg()[0]:.1f}")
    bare_t, bare_cpu, bare_frames, bare_faces = 0.0, 0.0, 0, 0
    pipe_t, pipe_cpu, pipe_frames = 0.0, 0.0, 0
    snaps = []
    order = []
    for r in range(args.rounds):
        order += ["bare", "pipe"] if r % 2 == 0 else ["pipe", "bare"]
    try:
        for k, side in enumerate(order):
            if side == "bare":
                span, cpu, faces = _bare_pass(frames, fps, args.face_model, args.max_faces)
                bare_t += span
                bare_cpu += cpu
                bare_frames += n - 1
                bare_faces += faces
                print(f"  bare MediaPipe pass: {(n - 1) / span:6.1f} fps ({faces / n:.2f} faces/frame)")
            else:
                try:
                    st, cpu = _pipeline_pass(args, n, unique < n, out, k)
                except PipelineError as exc:
                    raise SystemExit(f"edgefer bench pipeline: {exc}") from None
                snaps.append(st)
                pipe_t += (st.frames_processed - 1) / st.mean_fps
                pipe_cpu += cpu
                pipe_frames += st.frames_processed - 1
                print(f"  pipeline pass:       {st.mean_fps:6.1f} fps ({st.faces / max(st.frames_processed, 1):.2f} "
                      f"faces/frame, {st.frames_dropped} dropped) [{st.backend}, {st.model}]")
    finally:
        if tmp is not None:
            tmp.cleanup()
    bare_fps = bare_frames / bare_t
    pipe_fps = pipe_frames / pipe_t
    print(f"bare MediaPipe {bare_fps:.1f} fps | pipeline (track+classify+render+record+csv) {pipe_fps:.1f} fps | "
          f"ratio {pipe_fps / bare_fps:.2f} (target >= 0.75)")
    bare_ms, pipe_ms = bare_cpu / bare_frames * 1000, pipe_cpu / pipe_frames * 1000
    print(f"CPU time per frame (all threads): bare {bare_ms:.1f} ms | pipeline {pipe_ms:.1f} ms | "
          f"ratio bare/pipeline {bare_ms / pipe_ms:.2f} (the fps ratio if both had one core each; "
          "robust to a busy machine, where the pipeline's several threads get a larger CPU share than one)")
    print(f"{'stage':<11}{'p50 ms':>8}{'p95 ms':>8}   (median over pipeline passes)")
    for name in ("capture", "track", "classify", "render", "sink"):
        p50 = statistics.median(s.stage(name).p50_ms for s in snaps)
        p95 = statistics.median(s.stage(name).p95_ms for s in snaps)
        print(f"{name:<11}{p50:>8.2f}{p95:>8.2f}")
    e2e50 = statistics.median(s.end_to_end.p50_ms for s in snaps if s.end_to_end)
    e2e95 = statistics.median(s.end_to_end.p95_ms for s in snaps if s.end_to_end)
    print(f"{'end-to-end':<11}{e2e50:>8.2f}{e2e95:>8.2f}")
    return 0
