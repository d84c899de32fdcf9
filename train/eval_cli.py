"""`edgefer eval`: accuracy, macro-F1, per-class recall, confusion, ATT-COS, CAM-COS, Ekman IoU.

    edgefer eval --checkpoint runs/x/best.pt --data $EDGEFER_DATA/fer2013 --split test \\
        --report out/eval.json [--compare runs/y/best.pt] [--figures out/fig] [--cam gradcam]
    edgefer eval --model model.onnx --data DIR --split test --report out/eval.json

`--checkpoint` (torch, every CAM method) or `--model` (exported ONNX/TensorRT through
`edgefer.runtime`: metrics that need no gradients; CAM-COS when the model exports per-class CAMs).
Neither: the shipped default model. Landmarks come from `--landmarks` (default: the checkpoint's
training cache when it covers the same dataset folder, else a per-dataset folder in the edgefer
cache); what is missing is computed with MediaPipe first. `--faithfulness` adds deletion/insertion
areas (`train.faithfulness`) under the report key `faithfulness`; without it the report is unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from edgefer.atomic_write import write_text_atomically


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="training checkpoint (best.pt / last.pt)")
    src.add_argument("--model", help="exported model (.onnx, or an engine) run through edgefer.runtime")
    parser.add_argument("--data", help="dataset root (default: the checkpoint's data.root, else $EDGEFER_DATA/fer2013)")
    parser.add_argument("--split", default="test", help="split folder to evaluate (default: test)")
    parser.add_argument("--format", default="folder", choices=("folder", "fer2013_csv", "rafdb", "affectnet"),
                        help="dataset layout (fer2013_csv: --data is the CSV file)")
    parser.add_argument("--report", required=True, help="write the JSON report here")
    parser.add_argument("--compare", help="a second checkpoint or model, evaluated on the same data (e.g. the baseline)")
    parser.add_argument("--figures", help="folder for confusion matrices and per-class map figures")
    parser.add_argument("--cam", default="cam", choices=("cam", "gradcam", "gradcam++", "layercam"),
                        help="CAM method for CAM-COS (torch checkpoints)")
    parser.add_argument("--landmarks", help="landmark cache folder (missing entries are computed into it)")
    parser.add_argument("--face-model", help="face_landmarker.task for computing missing landmarks")
    parser.add_argument("--iou-threshold", type=float, default=0.5, help="binarisation threshold of the Ekman IoU")
    parser.add_argument("--ref-size", type=int, default=0, help="reference resolution of the cosines (default: input size)")
    parser.add_argument("--limit", type=int, default=0, help="evaluate a class-stratified subset of this size")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--backend", default="auto", help="runtime backend for --model (auto, onnx-cpu, tensorrt, ...)")
    parser.add_argument("--device", default="cpu", help="torch device for --checkpoint (cpu, cuda)")
    parser.add_argument("--faithfulness", action="store_true",
                        help="add deletion/insertion areas (attention, CAM, GradCAM, random) under `faithfulness`")
    parser.add_argument("--faithfulness-steps", type=int, default=16, help="deletion/insertion steps (default 16)")


def _scorer(path: str, args: argparse.Namespace, is_checkpoint: bool):
    from train.evaluate import RuntimeScorer, TorchScorer

    if is_checkpoint:
        return TorchScorer(path, cam_method=args.cam, device=args.device)
    return RuntimeScorer(path, backend=args.backend)


def _faithfulness(scorer, split, args: argparse.Namespace) -> dict:
    """Deletion/insertion areas (`train.faithfulness`) of the attention, the CAM method and, for a
    checkpoint, GradCAM, with a random map as the reference; only with --faithfulness."""
    from train.evaluate import to_crops
    from train.explain import ExplainModel
    from train.faithfulness import faithfulness_report

    model = ExplainModel.from_scorer(scorer)
    offered = model.methods()
    wanted = ("attention", args.cam if model.kind == "checkpoint" else "cam", "gradcam")
    methods = tuple(dict.fromkeys(m for m in wanted if m in offered))
    crops = to_crops(split.images, model.input_size)
    return faithfulness_report(model, crops, methods, steps=args.faithfulness_steps)


def _is_checkpoint(path: str) -> bool:
    return Path(path).suffix in (".pt", ".pth", ".ckpt")


def _write_json(data: dict, path: Path) -> None:
    write_text_atomically(path, json.dumps(data, indent=2))


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def run(args: argparse.Namespace) -> int:
    from edgefer.paths import data_root, default_model_path
    from train.config import expand_path
    from train.evaluate import default_landmark_dir, evaluate, load_eval_split

    if args.checkpoint:
        primary, is_ckpt = args.checkpoint, True
    elif args.model:
        primary, is_ckpt = args.model, _is_checkpoint(args.model)
    else:
        try:
            primary, is_ckpt = str(default_model_path()), False
        except FileNotFoundError as exc:
            print(f"edgefer eval: {exc}", file=sys.stderr)
            return 2
    try:
        scorer = _scorer(primary, args, is_ckpt)
    except (FileNotFoundError, ValueError) as exc:
        print(f"edgefer eval: {exc}", file=sys.stderr)
        return 2
    cfg_data = scorer.ckpt.config.get("data", {}) if is_ckpt else {}

    if args.data:
        data_dir = expand_path(args.data)
    elif cfg_data.get("root"):
        data_dir = expand_path(cfg_data["root"])
    elif (root := data_root()) is not None:
        data_dir = root / "fer2013"
    else:
        print("edgefer eval: say which dataset with --data DIR", file=sys.stderr)
        return 2
    if not (data_dir.is_file() if args.format == "fer2013_csv" else data_dir.is_dir()):
        print(f"edgefer eval: dataset {data_dir} does not exist", file=sys.stderr)
        return 2

    if args.landmarks:
        landmark_dir = expand_path(args.landmarks)
    else:
        landmark_dir = default_landmark_dir(data_dir)
        trained_root = cfg_data.get("root")
        trained_cache = cfg_data.get("landmarks")
        if trained_root and trained_cache:
            try:
                same = expand_path(trained_root).resolve() == data_dir.resolve()
                if same and expand_path(trained_cache).is_dir():
                    landmark_dir = expand_path(trained_cache)
            except Exception:  # noqa: BLE001 - an unset variable in the stored config: fall back to the default
                pass
    if args.face_model:
        os.environ.setdefault("EDGEFER_FACE_MODEL", args.face_model)

    contract = scorer.contract
    stored = scorer.stored_size or int(contract.input_size[0])
    color = "gray" if contract.channels == 1 else "rgb"
    try:
        split = load_eval_split(data_dir, args.split, stored, color, landmark_dir, fmt=args.format,
                                limit=args.limit or None)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        print(f"edgefer eval: {exc}", file=sys.stderr)
        return 2
    result = evaluate(scorer, split, ref_size=args.ref_size or None, iou_threshold=args.iou_threshold,
                      batch_size=args.batch_size)
    report = result.report
    report.update(data=str(data_dir), split=args.split, landmarks=str(landmark_dir),
                  landmark_counts=split.meta.get("landmark_counts"),
                  skipped_unreadable=len(split.meta.get("skipped_unreadable", [])))
    results = [(Path(primary).parent.name + "/" + Path(primary).name, result)]
    if args.compare:
        try:
            other = _scorer(args.compare, args, _is_checkpoint(args.compare))
        except (FileNotFoundError, ValueError) as exc:
            print(f"edgefer eval: --compare: {exc}", file=sys.stderr)
            return 2
        if other.contract.channels != contract.channels:
            print("edgefer eval: --compare model takes a different colour mode", file=sys.stderr)
            return 2
        res2 = evaluate(other, split, ref_size=args.ref_size or int(contract.input_size[0]),
                        iou_threshold=args.iou_threshold, batch_size=args.batch_size)
        report["compare"] = res2.report
        report["delta"] = {
            k: (None if report.get(k) is None or res2.report.get(k) is None else report[k] - res2.report[k])
            for k in ("accuracy", "macro_f1", "att_cos", "cam_cos", "ekman_iou")
        }
        results.append((Path(args.compare).parent.name + "/" + Path(args.compare).name, res2))
        if args.faithfulness:
            report["compare"]["faithfulness"] = _faithfulness(other, split, args)
    if args.faithfulness:
        report["faithfulness"] = _faithfulness(scorer, split, args)
    if args.figures:
        from train.figures import plot_class_maps, plot_confusion

        fig_dir = expand_path(args.figures)
        files = []
        for k, (name, res) in enumerate(results):
            files.append(str(plot_confusion(res.report["confusion"], fig_dir / f"confusion_{k}.png",
                                            f"{name} on {data_dir.name}/{args.split}: acc {res.report['accuracy']:.3f}")))
        files.append(str(plot_class_maps([r.class_means for _, r in results], [n for n, _ in results],
                                         fig_dir / "class_maps.png")))
        report["figures"] = files
    _write_json(report, expand_path(args.report))

    print(f"{'model':40s} {'acc':>7s} {'macroF1':>8s} {'ATT-COS':>8s} {'CAM-COS':>8s} {'EkmanIoU':>9s}")
    for name, res in results:
        r = res.report
        print(f"{name[-40:]:40s} {_fmt(r['accuracy']):>7s} {_fmt(r['macro_f1']):>8s} {_fmt(r['att_cos']):>8s} "
              f"{_fmt(r['cam_cos']):>8s} {_fmt(r['ekman_iou']):>9s}")
    h, w = contract.attention_size
    print(f"ATT-COS ceiling of a {h}x{w} attention map at {report['reference_size']} px: "
          f"{_fmt(report.get('att_cos_ceiling'))} (a perfect map of that size; see docs/training.md)")
    named = [(results[0][0], report)] + ([(results[1][0], report["compare"])] if len(results) > 1 else [])
    for name, rep in named:
        for method, v in rep.get("faithfulness", {}).items():
            if isinstance(v, dict):
                print(f"faithfulness {name[-30:]:30s} {method:10s} deletion AUC {v['deletion_auc']:.4f} "
                      f"insertion AUC {v['insertion_auc']:.4f}")
    print(f"n = {report['n']} images, {report['n_with_map']} with an AU map; report: {args.report}")
    return 0
