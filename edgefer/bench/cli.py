"""`edgefer bench NAME`: dispatch to one benchmark module, lazily like the top-level commands.

A benchmark module exposes `add_arguments(parser)` and `run(args) -> int`, and reports ratios of
two implementations measured in the same run, because absolute times on a shared machine are noise.
"""

from __future__ import annotations

import argparse
import importlib

from edgefer.cli import Command, missing_extra_message

BENCHES: tuple[Command, ...] = (
    Command("aumap", "edgefer.bench.aumap", "AU maps per second: Numba vs NumPy/OpenCV"),
    Command("tracker", "edgefer.bench.tracker", "tracker fps vs bare MediaPipe on the same video"),
    # Lives in export/: its torch column rebuilds the torch model (train/), which edgefer must not import.
    Command("model", "export.bench_model", "per-face latency/throughput per backend and torch"),
    Command("pipeline", "edgefer.bench.pipeline", "end-to-end fps vs bare MediaPipe"),
    Command("render", "edgefer.bench.render", "Numba overlay vs the same overlay with OpenCV calls"),
    Command("remote", "edgefer.bench.remote", "CPU per frame of --serve with 0, 1, 5 clients; --events latency"),
    Command("trainstep", "train.bench_step", "training images/s per backbone and input size, side by side", "train"),
    Command("latency", "export.bench_latency", "per-face ONNX Runtime latency of candidate backbones, side by side", "export"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for b in BENCHES:
        p = sub.add_parser(b.name, help=b.help, description=b.help)
        p.set_defaults(_bench=b)
        try:
            importlib.import_module(b.module).add_arguments(p)
        except ModuleNotFoundError as exc:
            p.set_defaults(_bench_error=missing_extra_message(exc, f"bench {b.name}", b.extra))


def run(args: argparse.Namespace) -> int:
    if getattr(args, "_bench_error", None):
        raise SystemExit(args._bench_error)
    return int(importlib.import_module(args._bench.module).run(args) or 0)
