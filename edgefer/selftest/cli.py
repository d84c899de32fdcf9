"""`edgefer selftest [--gpu] [--report R.json]`: check this machine's backends in one command.

With `--gpu` (an NVIDIA machine: a Jetson or a desktop GPU): build TensorRT engines from the shipped
ONNX model (FP16) and its Q/DQ copy (INT8) with edgefer's builder; check each, and ONNX Runtime's
CUDA and TensorRT execution providers when present, against ONNX Runtime CPU on real face crops
(top-1 agreement, max probability difference, attention cosine); time per-face latency at batch 1
and 8; run the pipeline with the TensorRT backend on the project's videos. Without `--gpu` the same
loop runs with ONNX Runtime CPU only (the INT8 file against the FP32 one, CPU latency, the pipeline
on the CPU), which is a quick health check anywhere and how the command is tested without a GPU.

It installs nothing, writes only into its work folder (a temporary one unless --workdir) and the
report, and stays within --time-limit (default 600 s): a stage that would start too late is
skipped and listed. Exit codes: 0 every check passed; 1 a check failed or a stage broke (the table
says which); 2 this machine cannot run what was asked (`--gpu` without TensorRT, cuda-python or a
GPU; no videos), with a message naming what is missing.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgefer.selftest.checks import SelftestReport

log = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT_S = 600.0


def _batches(text: str) -> list[int]:
    try:
        out = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batches takes comma-separated integers, not {text!r}") from None
    if not out or out[0] < 1:
        raise argparse.ArgumentTypeError(f"--batches needs sizes >= 1, got {text!r}")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpu", action="store_true",
                        help="the NVIDIA self-test: TensorRT engines (fp16, int8), ONNX Runtime CUDA/TensorRT providers, "
                             "pipeline on TensorRT (exit 2 with what is missing when this machine cannot)")
    parser.add_argument("--report", type=Path, default=None, help="write the full report here (JSON)")
    parser.add_argument("--model", type=Path, default=None, help="FP32 ONNX model (default: the shipped model)")
    parser.add_argument("--int8-model", type=Path, default=None,
                        help="INT8 Q/DQ ONNX model (default: MODEL.int8.onnx beside the model, when present)")
    parser.add_argument("--videos", type=Path, nargs="+", default=None,
                        help="video files or folders for the crops and the pipeline (default: $EDGEFER_DATA/videos, "
                             "else ../shared/data/videos beside the checkout)")
    parser.add_argument("--crops", type=int, default=64, help="real face crops to compare on (default 64)")
    parser.add_argument("--batches", type=_batches, default=[1, 8], help="batch sizes to time (default 1,8)")
    parser.add_argument("--iters", type=int, default=100, help="timed calls per backend and batch (default 100)")
    parser.add_argument("--max-batch", type=int, default=8, help="engine profile maximum batch (default 8)")
    parser.add_argument("--pipeline-frames", type=int, default=150, help="frames per video in the pipeline runs (default 150)")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S,
                        help=f"seconds for the whole self-test (default {DEFAULT_TIME_LIMIT_S:.0f})")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep engines, recordings and CSVs here (default: a temporary folder, removed)")
    parser.add_argument("--face-model", type=Path, default=None, help="face_landmarker.task (default: the usual lookup)")


def _unavailable(report: SelftestReport, args: argparse.Namespace, optional: list[str]) -> int:
    lines = ["edgefer selftest --gpu: this machine cannot run the GPU self-test. Missing:"]
    lines += [f"  - {m}" for m in report.missing]
    if optional:
        lines.append("Also absent (optional, timed when present):")
        lines += [f"  - {m}" for m in optional]
    lines.append("Run `edgefer doctor` for what this machine has; `edgefer selftest` (no --gpu) checks the CPU backend.")
    print("\n".join(lines), file=sys.stderr)
    if args.report:
        report.write(args.report)
        print(f"report: {args.report}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from edgefer.paths import default_model_path
    from edgefer.runtime.onnx_backend import OnnxRuntimeClassifier, available_ort_backends
    from edgefer.selftest.checks import (
        Candidate,
        Deadline,
        SelftestReport,
        Skipped,
        check_candidates,
        collect_crops,
        environment,
        find_videos,
        format_table,
        run_pipeline,
    )
    from edgefer.selftest.gpu import missing_for_gpu, optional_missing, ort_gpu_candidate, tensorrt_candidate

    if args.time_limit < 30:
        raise SystemExit("edgefer selftest: --time-limit must be at least 30 seconds")
    if args.crops < 1 or args.iters < 1 or args.pipeline_frames < 1 or args.max_batch < 1:
        raise SystemExit("edgefer selftest: --crops, --iters, --pipeline-frames and --max-batch must be >= 1")
    deadline = Deadline(args.time_limit)
    report = SelftestReport("gpu" if args.gpu else "cpu", args.time_limit)
    report.environment = environment()
    optional = optional_missing() if args.gpu else []
    if args.gpu:
        report.missing = missing_for_gpu()
        if report.missing:
            report.elapsed_s = deadline.elapsed()
            return _unavailable(report, args, optional)

    model = Path(args.model) if args.model else default_model_path()
    if not model.is_file():
        print(f"edgefer selftest: model {model} not found", file=sys.stderr)
        return 2
    int8 = args.int8_model or model.with_name(model.stem + ".int8.onnx")
    if not int8.is_file():
        if args.int8_model:
            print(f"edgefer selftest: INT8 model {int8} not found", file=sys.stderr)
            return 2
        int8 = None
    try:
        videos = find_videos(args.videos)
    except FileNotFoundError as exc:
        print(f"edgefer selftest: {exc}", file=sys.stderr)
        return 2

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="edgefer-selftest-")
        work = Path(tmp.name)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    try:
        # Copies in the work folder: engines, sidecars and caches are written beside the model.
        models = work / "models"
        models.mkdir(exist_ok=True)
        fp32 = Path(shutil.copy2(model, models / model.name))
        q8 = Path(shutil.copy2(int8, models / int8.name)) if int8 else None

        with OnnxRuntimeClassifier(fp32, "onnxruntime-cpu") as ref:
            crops = collect_crops(videos, ref.contract, args.crops, face_model=args.face_model)
            references = {"onnxruntime-cpu fp32": ref.predict(crops.crops)}
        report.crops = {"count": len(crops), "per_video": crops.per_video, "origins": crops.origins}
        if q8 is not None:
            with OnnxRuntimeClassifier(q8, "onnxruntime-cpu") as ref8:
                references["onnxruntime-cpu int8"] = ref8.predict(crops.crops)
        else:
            report.skipped.append(Skipped("int8", f"no INT8 model beside {model} (pass --int8-model)"))

        def ort_cpu(path: Path, label: str, refs: tuple[tuple[str, str], ...]) -> Candidate:
            return Candidate(f"onnxruntime-cpu {label}", lambda: OnnxRuntimeClassifier(path, "onnxruntime-cpu"), refs)

        # The CPU rows come first in both modes: the baseline every GPU figure is read against, and
        # the INT8 file's own quantisation error (reported, not judged).
        candidates = [ort_cpu(fp32, "fp32", ())]
        if q8 is not None:
            candidates.append(ort_cpu(q8, "int8", (("onnxruntime-cpu fp32", "info"),)))
        if args.gpu:
            candidates.append(tensorrt_candidate(
                report, "tensorrt fp16", fp32, "fp16", models / f"{fp32.stem}.fp16.engine", args.max_batch,
                (("onnxruntime-cpu fp32", "fp16"),),
            ))
            if q8 is not None:
                candidates.append(tensorrt_candidate(
                    report, "tensorrt int8", q8, "int8", models / f"{q8.stem}.engine", args.max_batch,
                    (("onnxruntime-cpu int8", "int8"), ("onnxruntime-cpu fp32", "info")),
                ))
            have = available_ort_backends()
            for backend, tol in (("onnxruntime-cuda", "fp32"), ("onnxruntime-tensorrt", "fp16")):
                if backend in have:  # ORT's TensorRT provider runs with trt_fp16_enable (onnx_backend)
                    candidates.append(ort_gpu_candidate(backend, fp32, backend, (("onnxruntime-cpu fp32", tol),)))
            report.skipped += [Skipped("optional backend", m) for m in optional]
        sources = check_candidates(report, candidates, crops.crops, references, deadline,
                                   batches=args.batches, iters=args.iters)

        if args.gpu:
            pipe_model, pipe_backend = sources.get("tensorrt fp16"), "tensorrt"
        else:
            pipe_model, pipe_backend = fp32, "onnxruntime-cpu"
        if pipe_model is None:
            report.skipped.append(Skipped("pipeline", "the fp16 TensorRT engine did not build or load (see above)"))
        else:
            for video in videos:
                if deadline.left() < 20:
                    report.skipped.append(Skipped(f"pipeline {video.name}", f"time limit: {deadline.left():.0f} s left"))
                    continue
                report.pipeline.append(run_pipeline(video, pipe_model, pipe_backend, work / "pipeline",
                                                    max_frames=args.pipeline_frames, face_model=args.face_model))
    except (OSError, ValueError, RuntimeError) as exc:
        # A stage that broke (a video that will not open, a model that will not load) ends the
        # run with what was found so far; the report says where it stopped.
        log.debug("self-test stopped", exc_info=True)
        report.errors.append(str(exc))
    finally:
        report.elapsed_s = deadline.elapsed()
        if tmp is not None:
            tmp.cleanup()

    print(format_table(report))
    if args.report:
        report.write(args.report)
        print(f"report: {args.report}")
    if args.workdir is not None:
        print(f"engines, recordings and CSVs: {args.workdir}")
    return 0 if report.status == "pass" else 1
