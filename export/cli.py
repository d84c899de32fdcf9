"""`edgefer export onnx` and `edgefer export tensorrt` (argument parsing only: imports are lazy).

The ONNX step runs on the training desktop (it needs torch); the TensorRT step runs on the device
that will use the engine, because engines are specific to the GPU and TensorRT version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="export_target", metavar="TARGET", required=True)

    o = sub.add_parser(
        "onnx",
        help="checkpoint -> ONNX (dynamic batch, contract metadata, parity-checked on real crops)",
        description="Export a training checkpoint to ONNX. The file is checked with onnx.checker and against "
        "the torch model on real face crops (probabilities within 1e-4, attention cosine >= 0.9999); the export "
        "fails, leaving any existing --out untouched, when the check does not hold.",
    )
    o.add_argument("--checkpoint", required=True, help="training checkpoint (train/checkpoint.py format)")
    o.add_argument("--out", required=True, help="ONNX file to write")
    o.add_argument("--cam", action="store_true", help="add a `cam` output: (N, 7, h, w) CAMs of all classes")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17; default 17)")
    o.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim")
    o.add_argument("--check-data", default=None,
                   help="folder of real face crops for the parity check (default: $EDGEFER_DATA/fer2013/test)")
    o.add_argument("--check-count", type=int, default=64, help="crops used by the parity check (default 64)")
    o.add_argument("--skip-check", action="store_true", help="skip the parity check (not recommended)")
    o.add_argument("--quantize", choices=["int8"], default=None, help="also write a static INT8 (QDQ) copy for CPUs")
    o.add_argument("--calib", default=None, help="folder of real face crops to calibrate INT8 on")
    o.add_argument("--calib-count", type=int, default=256, help="calibration crops (default 256)")
    o.add_argument("--eval-data", default=None,
                   help="labelled folder (<class>/<img> or <split>/<class>/<img>) to report fp32 vs int8 accuracy on")
    o.add_argument("--eval-per-class", type=int, default=100, help="images per class for --eval-data (default 100; 0 = all)")
    o.add_argument("--int8-out", default=None, help="INT8 file (default: OUT with .int8.onnx)")
    o.set_defaults(_export=run_onnx)

    t = sub.add_parser(
        "tensorrt",
        help="ONNX -> TensorRT engine (build it ON the device that will run it)",
        description="Build a TensorRT 10 engine from an edgefer ONNX file, with a dynamic batch profile 1..N, "
        "a timing cache and a JSON sidecar (MODEL.engine.json: contract, TensorRT version, device, ONNX sha256). "
        "Engines are specific to the GPU and TensorRT version that built them: run this command on the device "
        "that will use the engine (on a Jetson, on the Jetson itself).",
    )
    t.add_argument("--onnx", required=True, help="ONNX file exported by `edgefer export onnx`")
    t.add_argument("--out", required=True, help="engine file to write (a sidecar OUT.json is written beside it)")
    t.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp16", help="default fp16")
    t.add_argument("--max-batch", type=int, default=8, help="largest batch (faces per call) the engine accepts (default 8)")
    t.add_argument("--opt-batch", type=int, default=None, help="batch size kernels are tuned for (default min(2, max))")
    t.add_argument("--calib", default=None,
                   help="folder of real face crops (required for int8, unless --onnx is already an INT8 Q/DQ file)")
    t.add_argument("--calib-count", type=int, default=512, help="calibration images (default 512)")
    t.add_argument("--calib-batch", type=int, default=8, help="calibration batch size (default 8)")
    t.add_argument("--workspace-mb", type=int, default=1024, help="builder workspace limit in MB (default 1024)")
    from edgefer.runtime.contract_io import add_contract_argument

    add_contract_argument(t)
    t.set_defaults(_export=run_tensorrt)


def run(args: argparse.Namespace) -> int:
    return int(args._export(args))


def run_onnx(args: argparse.Namespace) -> int:
    from export.pipeline import default_check_data, export_checkpoint

    check = None
    if not args.skip_check:
        check = Path(args.check_data) if args.check_data else default_check_data()
        if check is None:
            print("edgefer export onnx: no real crops for the parity check: pass --check-data DIR "
                  "(e.g. fer2013/test) or set EDGEFER_DATA (or --skip-check)", file=sys.stderr)
            return 2
    else:
        print("WARNING: --skip-check: the ONNX file is NOT compared with the torch model", file=sys.stderr)
    try:
        result = export_checkpoint(
            args.checkpoint, args.out, cam=args.cam, opset=args.opset, simplify=args.simplify,
            check_data=check, check_count=args.check_count, quantize=args.quantize, calib=args.calib,
            calib_count=args.calib_count, eval_data=args.eval_data,
            eval_per_class=args.eval_per_class or None, int8_out=args.int8_out,
        )
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"edgefer export onnx: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {result.onnx_path}")
    if result.parity is not None:
        print(result.parity)
    if result.int8_path is not None:
        print(f"wrote {result.int8_path}")
        if result.int8_parity is not None:
            print(result.int8_parity)
        if result.accuracy is not None:
            print(result.accuracy.table())
    return 0


def run_tensorrt(args: argparse.Namespace) -> int:
    from edgefer.runtime.trt_build import BuildOptions

    onnx_path, out = Path(args.onnx), Path(args.out)
    try:
        if not onnx_path.is_file():
            raise FileNotFoundError(f"--onnx {onnx_path}: file not found")
        if args.precision == "int8" and not args.calib:
            from edgefer.runtime.onnx_backend import read_onnx_metadata
            from edgefer.runtime.trt_build import is_explicitly_quantized

            if not is_explicitly_quantized(read_onnx_metadata(onnx_path)):
                raise ValueError("--precision int8 needs --calib DIR (real face crops for calibration), "
                                 "or an INT8 ONNX file from `edgefer export onnx --quantize int8`")
        if args.calib and not Path(args.calib).is_dir():
            raise FileNotFoundError(f"--calib {args.calib}: folder not found")
        options = BuildOptions(
            precision=args.precision, max_batch=args.max_batch, opt_batch=args.opt_batch,
            workspace_mb=args.workspace_mb, calib_dir=Path(args.calib) if args.calib else None,
            calib_images=args.calib_count, calib_batch=args.calib_batch,
        )
        from edgefer.runtime.contract_io import parse_contract_option

        override = parse_contract_option(args.contract)
    except (FileNotFoundError, ValueError) as exc:
        print(f"edgefer export tensorrt: {exc}", file=sys.stderr)
        return 2
    from edgefer.runtime.trt_build import build_engine

    try:
        sidecar = build_engine(onnx_path, out, options, contract_override=override)
    except ImportError as exc:
        print(f"edgefer export tensorrt: {exc}", file=sys.stderr)
        return 3
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"edgefer export tensorrt: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({sidecar.precision}, batch 1..{sidecar.max_batch}, opt {sidecar.opt_batch}) "
          f"for {sidecar.device_name} (compute {sidecar.compute_capability}), TensorRT {sidecar.tensorrt_version}")
    print(f"sidecar {out}.json; ONNX sha256 {sidecar.onnx_sha256[:16]}...")
    return 0
