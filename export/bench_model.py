"""`edgefer bench model`: per-face latency and throughput of every available backend and of torch.

Every backend this machine offers (TensorRT, ONNX Runtime TensorRT/CUDA/CPU) runs the same model
file on the same real face crops (FER2013 test images when EDGEFER_DATA is set), next to the
torch model: from `--checkpoint` when given, else rebuilt from the contract (the tiny test model
exactly; a FerNet architecture with random weights, which times the same as trained weights).
Every column times the whole `predict` path: the same NumPy preprocessing, inference, softmax.

Timing runs in interleaved rounds (each round calls every backend once per batch size), so a busy
shared machine slows them alike; medians are reported. The table's ratios are what the numbers are
for: torch time / backend time (speed-up over torch) and per-face time at the largest batch / at
batch 1 (what batching buys). Absolute times on a shared 2-core box are noise.

torch is imported inside `run` only (the benchmark compares against it; the runtime never does).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edgefer.runtime.contract_io import add_contract_argument

    parser.add_argument("--model", default=None, help="ONNX model or engine (default: the shipped model)")
    parser.add_argument("--checkpoint", default=None, help="training checkpoint for the torch column")
    parser.add_argument("--batch", default="1,8", help="comma-separated batch sizes (default 1,8)")
    parser.add_argument("--iters", type=int, default=30, help="timed rounds per batch size (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up calls (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime and torch (default: all cores)")
    parser.add_argument("--backends", default=None, help="comma-separated backends (default: every available one)")
    parser.add_argument("--also", action="append", default=[], metavar="MODEL",
                        help="another ONNX file of the same model (e.g. the .int8.onnx copy) to time beside it; repeatable")
    parser.add_argument("--no-torch", action="store_true", help="leave out the torch column")
    parser.add_argument("--crops", default=None, help="folder of face crops (default $EDGEFER_DATA/fer2013/test)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    add_contract_argument(parser)


@dataclass
class Timing:
    name: str
    batch: int
    ms_per_call: float
    ms_per_face: float
    faces_per_s: float


def available_backends(model: Path) -> list[str]:
    from edgefer.runtime.loader import is_engine_file
    from edgefer.runtime.onnx_backend import available_ort_backends
    from edgefer.runtime.trt_env import tensorrt_usable

    if is_engine_file(model):
        return ["tensorrt"]
    return (["tensorrt"] if tensorrt_usable() else []) + available_ort_backends()


def torch_model_for(contract: Any, checkpoint: str | None) -> tuple[Any, str]:
    """(torch module in eval mode, where it came from)."""
    if checkpoint:
        from train.checkpoint import load_checkpoint

        return load_checkpoint(checkpoint).model.eval(), f"checkpoint {checkpoint}"
    from export.tiny import TINY_BACKBONE, build_tiny_model

    if contract.backbone == TINY_BACKBONE:
        model, _ = build_tiny_model(contract.color, contract.input_size[0])
        return model, "export.tiny (same seeded weights as the tiny ONNX model)"
    from train.model import ModelSpec, build_model

    if "model_spec" in contract.extra:  # written by `edgefer export onnx` from a checkpoint
        spec = ModelSpec.from_dict(contract.extra["model_spec"])
        return build_model(spec).eval(), f"{spec.backbone} rebuilt from the contract's model_spec (random weights: timing only)"
    spec = ModelSpec(backbone=contract.backbone, in_chans=contract.channels,
                     output_stride=int(contract.extra.get("output_stride", 8)))
    probe = build_model(spec)
    info: Any = probe.features.feature_info  # timm's FeatureInfo (nn.Module attributes type as Tensor | Module)
    names = [str(info.module_name(i)) for i in range(len(info.channels()))]
    if contract.attention_layer in names:
        spec = ModelSpec(backbone=spec.backbone, in_chans=spec.in_chans, output_stride=spec.output_stride,
                         attention_stage=names.index(contract.attention_layer))
        probe = build_model(spec)
    log.warning("no model_spec in the contract: torch architecture guessed from the backbone name %r; "
                "pass --checkpoint for an exact torch twin", contract.backbone)
    return probe.eval(), (f"{contract.backbone} GUESSED from the backbone name (timm defaults, random weights); "
                          "pass --checkpoint for an exact twin")


def load_bench_crops(folder: str | None, contract: Any, n: int) -> tuple[np.ndarray, str]:
    from edgefer.paths import data_root
    from edgefer.runtime.crops import list_images, load_crops

    base = data_root()
    root = Path(folder) if folder else (base / "fer2013" / "test" if base else None)
    if root is not None and root.is_dir():
        paths = list_images(root, limit=n, seed=0)
        crops = load_crops(paths, contract.input_size)
        reps = -(-n // len(crops))
        return np.concatenate([crops] * reps)[:n], f"{len(paths)} real crops from {root}"
    h, w = contract.input_size
    return np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8), "random crops (no data folder)"


def time_interleaved(funcs: dict[str, Callable[[np.ndarray], Any]], crops: np.ndarray, batches: list[int],
                     iters: int, warmup: int) -> list[Timing]:
    samples: dict[tuple[str, int], list[float]] = {(n, b): [] for n in funcs for b in batches}
    for b in batches:
        x = crops[:b]
        for f in funcs.values():
            for _ in range(warmup):
                f(x)
    try:
        from tqdm import tqdm

        rounds = tqdm(range(iters), desc="bench model", unit="round", leave=False)
    except ImportError:  # pragma: no cover
        rounds = range(iters)
    for _ in rounds:
        for b in batches:
            x = crops[:b]
            for name, f in funcs.items():
                t0 = time.perf_counter()
                f(x)
                samples[(name, b)].append(time.perf_counter() - t0)
    out = []
    for (name, b), s in samples.items():
        ms = statistics.median(s) * 1e3
        out.append(Timing(name, b, ms, ms / b, 1e3 * b / ms))
    return out


def render(timings: list[Timing], batches: list[int], torch_name: str | None) -> str:
    by = {(t.name, t.batch): t for t in timings}
    names = list(dict.fromkeys(t.name for t in timings))
    width = max(24, *(len(n) + 2 for n in names))
    lines = [f"{'backend':{width}s}{'batch':>6s}{'ms/call':>10s}{'ms/face':>10s}{'faces/s':>10s}{'vs torch':>10s}"]
    for name in names:
        for b in batches:
            t = by[(name, b)]
            ratio = ""
            if torch_name and name != torch_name:
                ratio = f"{by[(torch_name, b)].ms_per_face / t.ms_per_face:9.2f}x"
            lines.append(f"{name:{width}s}{b:6d}{t.ms_per_call:10.3f}{t.ms_per_face:10.3f}{t.faces_per_s:10.1f}{ratio:>10s}")
    if len(batches) > 1:
        lo, hi = min(batches), max(batches)
        lines.append("")
        lines.append(f"per-face time, batch {hi} / batch {lo} (below 1 = batching helps):")
        for name in names:
            r = by[(name, hi)].ms_per_face / by[(name, lo)].ms_per_face
            lines.append(f"  {name:{width - 2}s}{r:8.2f}")
    if torch_name:
        lines.append("")
        lines.append("'vs torch' = torch ms/face / backend ms/face (above 1 = faster than torch)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from edgefer.runtime import load_classifier
    from edgefer.runtime.contract_io import parse_contract_option
    from edgefer.runtime.loader import resolve_model_path
    from edgefer.runtime.preprocess import Preprocessor, softmax

    try:
        batches = sorted({int(b) for b in str(args.batch).split(",") if b.strip()})
    except ValueError:
        raise SystemExit(f"edgefer bench model: --batch {args.batch!r} must be comma-separated integers") from None
    if not batches or min(batches) < 1:
        raise SystemExit("edgefer bench model: batch sizes must be >= 1")
    threads = args.threads or os.cpu_count() or 1
    model_path = resolve_model_path(args.model)
    override = parse_contract_option(args.contract)
    backends = args.backends.split(",") if args.backends else available_backends(model_path)

    funcs: dict[str, Callable[[np.ndarray], Any]] = {}
    contract = None
    for name in backends:
        clf = load_classifier(model_path, backend=name, contract_override=override, threads=threads)
        funcs[clf.backend_name] = clf.predict
        contract = clf.model_contract
    assert contract is not None, "no backend"
    for extra in args.also:
        clf = load_classifier(extra, backend=backends[-1] if args.backends else "auto", threads=threads)
        funcs[f"{clf.backend_name} {Path(extra).name}"] = clf.predict

    torch_name = None
    torch_source = "left out (--no-torch)"
    if not args.no_torch:
        import torch  # only here: the benchmark compares against torch

        torch.set_num_threads(threads)
        model, torch_source = torch_model_for(contract, args.checkpoint)
        pre = Preprocessor(contract)
        cam = "cam" in contract.outputs

        def torch_predict(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                t = torch.from_numpy(pre(x))
                out = model.forward_with_cam(t) if cam else model(t)
                return softmax(out[0].numpy())

        torch_name = "torch-cpu"
        funcs[torch_name] = torch_predict

    crops, crop_source = load_bench_crops(args.crops, contract, max(batches))
    print(f"model {model_path} ({contract.backbone}, {contract.input_size[0]}x{contract.input_size[1]} {contract.color})")
    print(f"torch: {torch_source}; crops: {crop_source}; threads {threads}; {args.iters} interleaved rounds, medians")
    timings = time_interleaved(funcs, crops, batches, args.iters, args.warmup)
    print(render(timings, batches, torch_name))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            {"model": str(model_path), "threads": threads, "iters": args.iters, "torch": torch_source,
             "crops": crop_source, "timings": [asdict(t) for t in timings]}, indent=2))
    return 0
