"""The `edgefer` command: one entry point, subcommands dispatched lazily.

Each subcommand lives in a light module exposing `add_arguments(parser)` and `run(args) -> int`.
Those modules import nothing heavy at import time, so `edgefer --help` is instant and the runtime
core never pulls in torch or Qt. When a subcommand's extra is not installed, the user is told which
one to install instead of seeing a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str
    extra: str | None = None  # the pip extra the command needs beyond the base install


COMMANDS: tuple[Command, ...] = (
    Command("run", "edgefer.pipeline.cli", "track faces in a video or camera, classify, overlay, record"),
    Command("ui", "ui.cli", "the PyQt6 monitoring application", "ui"),
    Command("landmarks", "edgefer.landmarks_cli", "compute the landmark cache of a dataset folder"),
    Command("aumap", "edgefer.au.cli", "draw an image with its AU map overlaid, to check by eye"),
    Command("train", "train.cli", "train an AU-guided expression classifier", "train"),
    Command("curves", "train.curves", "plot learning curves of training runs side by side", "train"),
    Command("ablate", "train.ablation", "train a recipe with one change at a time and compare (validation only)", "train"),
    Command("eval", "train.eval_cli", "evaluate a checkpoint or ONNX model (accuracy, ATT-COS, CAM-COS)", "train"),
    Command("explain", "train.explain_cli", "explanation maps of images: attention, CAMs, LIME, occlusion", "train"),
    Command("study", "train.study", "compare models' explanations with Ekman masks, each other, and by faithfulness", "train"),
    Command("export", "export.cli", "export a checkpoint to ONNX or an ONNX model to TensorRT", "export"),
    Command("doctor", "edgefer.runtime.doctor", "what this machine offers edgefer (backends, OpenCV, GPU)"),
    Command("bench", "edgefer.bench.cli", "benchmarks that print ratios measured side by side"),
    Command("selftest", "edgefer.selftest.cli", "check this machine's backends against ONNX Runtime CPU (--gpu: TensorRT)"),
)

#: Third-party modules that belong to an extra; a ModuleNotFoundError naming one means "install it".
EXTRA_MODULES = {
    "torch": "train",
    "torchvision": "train",
    "timm": "train",
    "safetensors": "train",
    "tensorboard": "train",
    "matplotlib": "train",
    "onnx": "export",
    "onnxslim": "export",
    "tensorrt": "tensorrt",
    "cuda": "tensorrt",
    "PyQt6": "ui",
    "pytestqt": "dev",
}


def missing_extra_message(exc: ModuleNotFoundError, command: str, default_extra: str | None) -> str:
    top = (exc.name or "").split(".")[0]
    extra = EXTRA_MODULES.get(top, default_extra)
    if extra is None:
        return f"edgefer {command}: missing Python module {exc.name!r} ({exc})"
    return (
        f"edgefer {command} needs the '{extra}' extra (missing module {top!r}). "
        f"Install it with: pip install 'edgefer[{extra}]'"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgefer",
        description="Interpretable facial expression recognition on the edge: "
        "faces tracked with MediaPipe, expressions classified by an AU-guided model whose "
        "attention map is the explanation.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        p.set_defaults(_command=cmd)
        try:
            module = importlib.import_module(cmd.module)
        except ModuleNotFoundError as exc:
            # The command module itself is light; a miss here means a missing extra at import.
            p.set_defaults(_import_error=missing_extra_message(exc, cmd.name, cmd.extra))
            continue
        module.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose + 1, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    from edgefer.redact import install_log_redaction

    install_log_redaction()  # no log line of any library ever shows a camera password
    cmd: Command | None = getattr(args, "_command", None)
    if cmd is None:
        parser.print_help()
        return 2
    if getattr(args, "_import_error", None):
        print(args._import_error, file=sys.stderr)
        return 3
    module = importlib.import_module(cmd.module)
    from edgefer.runtime.errors import BackendUnavailableError

    try:
        return int(module.run(args) or 0)
    except BackendUnavailableError as exc:
        # This machine cannot run what was asked (e.g. a TensorRT engine without TensorRT): a
        # setup error like a bad --model, so exit 2 with the one-line reason, not a traceback.
        print(f"edgefer {cmd.name}: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top in EXTRA_MODULES:
            print(missing_extra_message(exc, cmd.name, cmd.extra), file=sys.stderr)
            return 3
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
