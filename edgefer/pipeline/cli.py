"""`edgefer run`: track faces in a video or camera, classify expressions, overlay, record.

Settings come from `--config` (a YAML profile such as configs/pipeline/desktop.yaml), then the
flags given on the command line, then `--set key=value` overrides (any settings key, dotted).
SIGINT/SIGTERM stop the run cleanly: queued frames are finished and every file is closed and
playable; a second signal aborts at once (files still closed).

Exit status: 0 all good; 1 nothing could be read, or an output failed (an error event);
2 bad settings / model / source; 130 (SIGINT) or 143 (SIGTERM) when interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections import deque
from pathlib import Path

from edgefer import live


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "sources: 0 (camera index), /dev/video0, v4l2:///dev/video0, csi://0, rtsp://host/stream,\n"
        "         file://clip.mp4 or any path FFmpeg reads (mp4, GIF, HEVC .mov), or a GStreamer\n"
        "         pipeline ending in appsink (contains '!').\n"
        "examples:\n"
        "  edgefer run --source clip.mp4 --headless --record out/annotated.mp4 --csv out/faces.csv\n"
        "  edgefer run --source 0 --config configs/pipeline/desktop.yaml\n"
        "  edgefer run --source csi://0 --config configs/pipeline/jetson_orin.yaml --record rec.mp4 --segment-seconds 300"
    )
    parser.add_argument("--source", help="camera index, device, file, URL or GStreamer pipeline")
    parser.add_argument("--model", type=Path, help="ONNX model or TensorRT engine (default: the shipped model)")
    parser.add_argument("--backend", help="auto, tensorrt, onnxruntime-tensorrt, onnxruntime-cuda, onnxruntime-cpu")
    parser.add_argument("--record", type=Path, metavar="OUT.mp4", help="write the annotated video here")
    rows = parser.add_mutually_exclusive_group()
    rows.add_argument("--csv", type=Path, metavar="OUT.csv", help="per-face per-frame rows as CSV")
    rows.add_argument("--jsonl", type=Path, metavar="OUT.jsonl", help="per-face per-frame rows as JSON lines")
    parser.add_argument("--heatmap", choices=live.HEATMAP_MODES, help=f"overlay on each face (default {live.DEFAULT_HEATMAP})")
    parser.add_argument("--opacity", type=float,
                        help=f"heatmap opacity {live.OPACITY_MIN:g}..{live.OPACITY_MAX:g} (default {live.DEFAULT_OPACITY:g})")
    parser.add_argument("--headless", action="store_true", default=None, help="no window; only write the outputs")
    parser.add_argument("--max-faces", type=int,
                        help=f"faces tracked per frame, 1..{live.MAX_FACES_LIMIT} (default {live.DEFAULT_MAX_FACES})")
    parser.add_argument("--config", type=Path, help="YAML settings profile (configs/pipeline/*.yaml)")
    parser.add_argument("--realtime", action="store_true", default=None,
                        help="pace a file at its own frame rate (drops stale frames like a camera)")
    parser.add_argument("--loop", action="store_true", default=None, help="replay a file source forever")
    parser.add_argument("--blendshapes", action="store_true", default=None, help="add the 52 MediaPipe blendshapes to the rows")
    parser.add_argument("--segment-seconds", type=float, help="rotate the recording into OUT_000.mp4, OUT_001.mp4, ...")
    parser.add_argument("--smoothing", type=float, help=f"temporal smoothing strength {live.SMOOTHING_MIN:g}..<"
                        f"{live.SMOOTHING_SUP:g} (default {live.DEFAULT_SMOOTHING:g}; 0 = raw)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames have been read")
    parser.add_argument("--face-model", type=Path, help="face_landmarker.task (default: resolved like edgefer landmarks)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any setting, e.g. record.codec=avc1 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--serve", metavar="[HOST:]PORT", help="serve a monitoring page, MJPEG, rows, /metrics "
                        "(127.0.0.1 unless HOST is given; another HOST needs a token; docs/remote.md)")
    parser.add_argument("--events", metavar="mqtt://[USER:PASS@]HOST[:PORT]/TOPIC",
                        help="publish the per-face rows as JSON to an MQTT broker (docs/remote.md)")
    parser.add_argument("--events-changes", action="store_true", default=None,
                        help="with --events: only a track's start, expression changes and end")


def build_settings(args: argparse.Namespace):
    """Settings from --config, then flags, then --set overrides (raises ConfigError/ValueError)."""
    from edgefer.config import load_yaml, merge_nested, parse_overrides, validate_settings
    from edgefer.pipeline.settings import PipelineSettings

    data = load_yaml(args.config) if args.config else {}
    flags: dict = {}

    def put(dotted: str, value) -> None:
        if value is None:
            return
        node = flags
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    put("source", args.source)
    put("model", str(args.model) if args.model else None)
    put("backend", args.backend)
    put("record.path", str(args.record) if args.record else None)
    put("record.segment_seconds", args.segment_seconds)
    if args.csv:
        put("csv", str(args.csv))
        put("jsonl", None)
        data.pop("jsonl", None)
    if args.jsonl:
        put("jsonl", str(args.jsonl))
        data.pop("csv", None)
    put("heatmap.mode", args.heatmap)
    put("heatmap.opacity", args.opacity)
    put("headless", args.headless)
    put("max_faces", args.max_faces)
    put("realtime", args.realtime)
    put("capture.loop", args.loop)
    put("blendshapes", args.blendshapes)
    put("smoothing", args.smoothing)
    put("max_frames", args.max_frames)
    put("face_model", str(args.face_model) if args.face_model else None)
    put("serve.address", getattr(args, "serve", None))
    put("events.url", getattr(args, "events", None))
    put("events.mode", "changes" if getattr(args, "events_changes", None) else None)
    merged = merge_nested(merge_nested(data, flags), parse_overrides(args.set))
    source = str(args.config) if args.config else "command line"
    return validate_settings(PipelineSettings, merged, source)


def _frame_total(settings) -> int | None:
    """Frames a file source will give (for the progress bar), None for live/unknown."""
    from edgefer.pipeline.sources import SourceSpec

    try:
        spec = SourceSpec.parse(settings.source, live=settings.capture.live)
    except ValueError:
        return None
    if spec.is_live or settings.capture.loop or settings.realtime:
        return settings.max_frames
    import cv2

    cap = cv2.VideoCapture(spec.uri)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
    cap.release()
    total = n if n > 0 else None
    if settings.max_frames is not None:
        total = min(total, settings.max_frames) if total else settings.max_frames
    return total


def _source_file_problem(settings) -> str | None:
    """A missing file or a folder as the source, before anything loads or any output is opened:
    the very check `Pipeline.start` makes (`SourceSpec.file_problem`), so the words are the same."""
    from edgefer.pipeline.sources import SourceSpec

    try:
        spec = SourceSpec.parse(settings.source, live=settings.capture.live)
    except ValueError:
        return None  # the pipeline reports a bad source string itself
    return spec.file_problem()


def run(args: argparse.Namespace) -> int:
    from edgefer.config import ConfigError

    if args.source is None and args.config is None:
        print("edgefer run: give --source (or a --config that sets source)", file=sys.stderr)
        return 2
    try:
        settings = build_settings(args)
    except (ConfigError, ValueError) as exc:
        print(f"edgefer run: {exc}", file=sys.stderr)
        return 2
    problem = _source_file_problem(settings)
    if problem is not None:
        print(f"edgefer run: {problem}", file=sys.stderr)
        return 2

    remote = None
    if settings.serve.address is not None or settings.events.url is not None:
        from edgefer.remote.session import RemoteSession, ServeError

        remote = RemoteSession(settings)
        try:
            remote.start()
        except ServeError as exc:
            print(f"edgefer run: {exc}", file=sys.stderr)
            return 2
        for line in remote.announce():
            print(line, file=sys.stderr)

    from tqdm import tqdm

    from edgefer.pipeline.runner import PipelineError, run_pipeline

    stop = threading.Event()
    received: list[int] = []

    abort = threading.Event()

    def _on_signal(signum, _frame) -> None:
        received.append(signum)
        name = signal.Signals(signum).name
        if len(received) == 1:
            stop.set()
            print(f"\n{name}: finishing queued frames and closing files ...", file=sys.stderr)
        elif len(received) == 2:
            # Not KeyboardInterrupt: raised inside stop(), it left the stage threads running into
            # interpreter exit, which killed the recorder mid-write (unplayable file, or exit 134).
            abort.set()
            print(f"\n{name} again: dropping queued frames; closing files (once more to quit at once) ...",
                  file=sys.stderr)
        else:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    events = _Faults()
    total = None if args.no_progress else _frame_total(settings)
    bars: list = []

    def _on_result(_result) -> None:
        if remote is not None:
            remote.on_result(_result)
        if args.no_progress:
            return
        if not bars:
            # Created at the first frame, not before the run: MediaPipe's native start-up lines
            # (glog W0000 …, "INFO: Created TensorFlow Lite XNNPACK delegate") are out by then
            # and no longer break into the bar.
            bars.append(tqdm(total=total, unit="frame", desc="edgefer run", mininterval=0.5, file=sys.stderr))
        bars[0].update(1)

    from tqdm.contrib.logging import logging_redirect_tqdm

    from edgefer.redact import install_log_redaction

    try:
        # Log lines go above the bar (tqdm.write) instead of through it; the redirect's handler
        # gets the credential filter too.
        with logging_redirect_tqdm():
            install_log_redaction()
            stats = run_pipeline(settings, on_result=_on_result, on_event=events.add, stop_event=stop, abort_event=abort,
                                 on_created=remote.attach if remote is not None else None)
    except PipelineError as exc:
        _restore_signals(previous)
        print(f"edgefer run: {exc}", file=sys.stderr)
        return 2
    finally:
        for bar in bars:
            bar.close()
        if remote is not None:
            remote.close()  # drains the event queue (events.drain_s), then stops the server
        # The handlers stay until the summary is printed: a second Ctrl+C that comes after the
        # drain is still a second Ctrl+C (exit 130), not a KeyboardInterrupt in a print.
        if sys.exc_info()[0] is not None:
            _restore_signals(previous)

    errors = events.errors
    print()
    if events.left_out:
        print(f"({events.left_out} earlier warning(s)/error(s) not repeated here; the log has them all)")
    for e in events.kept():
        print(f"{e.kind.upper()}: {e.stage}: {e.message}")
    if stats.outputs:
        print("outputs:")
        for out in stats.outputs:
            print(f"  {out}")
    elif settings.record.path or settings.csv or settings.jsonl:
        print("outputs: none written (the outputs asked for failed: see the errors above)")
    else:
        print("outputs: none (add --record OUT.mp4 and/or --csv OUT.csv)")
    print(stats.format())
    for line in remote.summary() if remote is not None else []:
        print(line)
    if received:
        # Everything is closed and said; the process is about to exit. A second Ctrl+C from now on
        # is ignored: Python resets its own handlers to the default late in its teardown (not an
        # ignored signal), and a Ctrl+C then turned exit 130 into a death by SIGINT (seen, -2).
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        return 128 + received[0]
    _restore_signals(previous)
    if stats.frames_read == 0 or errors:
        return 1
    return 0


class _Faults:
    """The warnings and errors of a run, for its summary: the last `keep` of them, and counts.

    A run that goes on for days can send millions of events (a flapping camera, a model that
    always fails); the summary keeps the most recent ones in a bounded deque, the log has every
    one, and `errors` counts them all (the exit status). Status events are only logged.
    """

    def __init__(self, keep: int = 200) -> None:
        self._kept: deque = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.errors = 0
        self.seen = 0

    def add(self, event) -> None:
        if event.kind not in ("warning", "error"):
            return
        with self._lock:
            self.seen += 1
            self.errors += event.kind == "error"
            self._kept.append(event)

    @property
    def left_out(self) -> int:
        return self.seen - len(self._kept)

    def kept(self) -> list:
        """The kept events, warnings first then errors, each in order (as the summary always had)."""
        with self._lock:
            kept = list(self._kept)
        return [e for e in kept if e.kind == "warning"] + [e for e in kept if e.kind == "error"]


def _restore_signals(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
