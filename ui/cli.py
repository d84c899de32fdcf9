"""`edgefer ui`: the monitoring window. Light on purpose: Qt is imported only inside `run`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", help="start at once on this source: camera index, video file, rtsp:// URL, "
                        "GStreamer pipeline (default: the last source, started when you press Start)")
    parser.add_argument("--model", help="model file (.onnx or TensorRT .engine); default: the last one chosen, "
                        "else the shipped model")
    parser.add_argument("--settings", type=Path, metavar="INI",
                        help="keep the window's settings in this INI file instead of the user's settings")
    parser.add_argument("--fast", action="store_true",
                        help="process video files as fast as possible instead of at their own frame rate")
    parser.add_argument("--loop", action="store_true", help="replay a video file forever")
    parser.add_argument("--quit-after", type=float, metavar="S",
                        help="close the window after S seconds (demos, kiosk runs, tests)")
    parser.add_argument("--screenshot", type=Path, metavar="PNG",
                        help="with --quit-after: save a screenshot of the window (grabbed from the screen) "
                        "just before closing, plus PNG.json describing what it shows")
    parser.add_argument("--platform", help="Qt platform plugin (e.g. xcb, wayland, offscreen); default: Qt's choice")
    parser.add_argument("--serve", metavar="[HOST:]PORT", help="also serve the monitoring page, MJPEG, rows and "
                        "/metrics of the window's runs, as `edgefer run --serve` (docs/remote.md)")
    parser.add_argument("--events", metavar="mqtt://[USER:PASS@]HOST[:PORT]/TOPIC",
                        help="also publish the per-face rows to an MQTT broker, as `edgefer run --events`")
    parser.add_argument("--events-changes", action="store_true", help="with --events: only starts, changes and ends")


def run(args: argparse.Namespace) -> int:
    if args.screenshot is not None and args.quit_after is None:
        print("edgefer ui: --screenshot needs --quit-after S (when to take it)")
        return 2
    if args.quit_after is not None and args.quit_after <= 0:
        print(f"edgefer ui: --quit-after must be positive, got {args.quit_after}")
        return 2
    if args.model and not Path(args.model).is_file():
        print(f"edgefer ui: model file not found: {args.model}")
        return 2
    remote = None
    if args.serve or args.events:
        from edgefer.config import validate_settings
        from edgefer.pipeline.settings import PipelineSettings
        from edgefer.remote.session import RemoteSession, ServeError

        try:  # validated like `edgefer run`'s settings: a bad URL is named, its password masked
            remote = RemoteSession(validate_settings(PipelineSettings, {
                "serve": {"address": args.serve},
                "events": {"url": args.events, "mode": "changes" if args.events_changes else "rows"}}, "command line"))
            remote.start()
        except (ValueError, ServeError) as exc:
            print(f"edgefer ui: {exc}", file=sys.stderr)
            return 2
        for line in remote.announce():
            print(line, file=sys.stderr)
    from ui.app import run_app

    try:
        return run_app(
            source=args.source,
            model=args.model,
            settings_path=args.settings,
            realtime=not args.fast,
            loop=args.loop,
            quit_after=args.quit_after,
            screenshot=args.screenshot,
            platform=args.platform,
            remote=remote,
        )
    finally:
        if remote is not None:  # the window closed: drain the events, stop the server
            remote.close()
            for line in remote.summary():
                print(line)
