"""`edgefer bench latency`: per-face ONNX Runtime latency of candidate backbones, side by side.

The accuracy/latency study behind the shipped model's choice: each candidate (the same presets as
`edgefer bench trainstep`) is built untrained, exported with the project's own exporter (the graph
the runtime will really run: logits, attention and CAMs), and timed with ONNX Runtime on the CPU at
batch 1 through `edgefer.runtime.load_classifier`, preprocessing included. Weights do not change
the cost of a dense CNN, so untrained models time like trained ones. Candidates are measured
round-robin and the median of the rounds is kept, so load from other processes hits all alike;
the ratio to the first candidate is the figure to read.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np


@dataclass
class LatencyCase:
    name: str
    size: int
    path: Path
    params: int
    megabytes: float
    attention: tuple[int, int]
    samples: list[float]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default="resnet18_half,resnet18_quarter,resnet10t,resnet18",
                        help="comma-separated presets of `edgefer bench trainstep` or timm names")
    parser.add_argument("--sizes", default="48,56,64", help="comma-separated input sizes (px)")
    parser.add_argument("--output-stride", type=int, default=8)
    parser.add_argument("--iters", type=int, default=50, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin repetitions (median kept)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")


def _build_cases(args: argparse.Namespace, folder: Path) -> list[LatencyCase]:
    from export.onnx_export import export_onnx
    from export.tiny import tiny_contract
    from train.bench_step import PRESETS
    from train.model import ModelSpec, build_model

    cases = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        backbone, kwargs = PRESETS.get(name, (name, {}))
        for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
            spec = ModelSpec(backbone, in_chans=1, output_stride=args.output_stride, backbone_kwargs=kwargs)
            model = build_model(spec).eval()
            att = model.attention_size(size)
            contract = replace(tiny_contract("gray", size), attention_size=att, backbone=backbone)
            path = folder / f"{name}-{size}.onnx"
            export_onnx(model, contract, path, cam=True)
            params = sum(p.numel() for p in model.parameters())
            cases.append(LatencyCase(name, size, path, params, path.stat().st_size / 1e6, att, []))
    return cases


def run(args: argparse.Namespace) -> int:
    from edgefer.runtime import load_classifier

    with tempfile.TemporaryDirectory(prefix="edgefer-latency-") as tmp:
        cases = _build_cases(args, Path(tmp))
        rng = np.random.default_rng(0)
        classifiers = [load_classifier(c.path, backend="onnxruntime-cpu", threads=args.threads) for c in cases]
        crops = [rng.integers(0, 256, (1, c.size, c.size, 3), dtype=np.uint8) for c in cases]
        for clf, x in zip(classifiers, crops, strict=True):  # warm-up
            for _ in range(5):
                clf.predict(x)
        for _ in range(args.rounds):
            for case, clf, x in zip(cases, classifiers, crops, strict=True):
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    clf.predict(x)
                case.samples.append((time.perf_counter() - t0) / args.iters * 1e3)
    first = statistics.median(cases[0].samples)
    print(f"ONNX Runtime CPU, batch 1, {args.threads} thread(s), median of {args.rounds} rounds x {args.iters} calls")
    print(f"{'model':<18} {'size':>4} {'attention':>9} {'params':>8} {'ONNX MB':>8} {'ms/face':>8} {'vs first':>8}")
    for c in cases:
        ms = statistics.median(c.samples)
        att = f"{c.attention[0]}x{c.attention[1]}"
        print(f"{c.name:<18} {c.size:>4} {att:>9} {c.params / 1e6:>7.2f}M {c.megabytes:>8.1f} {ms:>8.2f} {ms / first:>8.2f}")
    return 0
