"""`edgefer train --config configs/train/X.yaml [key=value ...] [--out RUN_DIR] [--resume]`.

Light at import (argparse only): torch and timm load when the command runs. Under torchrun the same
command trains with DDP (`torchrun --nproc_per_node=N -m edgefer.cli train ...`).

`--resume` continues the run in RUN_DIR from its `last.pt`, using the configuration stored in that
checkpoint (so the recipe file may have changed since); `key=value` overrides still apply on top,
e.g. `optim.epochs=40` to extend a finished run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="training recipe (YAML), e.g. configs/train/fer2013_edge_au.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override recipe keys, e.g. optim.epochs=3")
    parser.add_argument("--out", help="run folder (default: run.out of the recipe, else runs/<recipe name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    parser.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")


def resolve_run_dir(args: argparse.Namespace, cfg_out: str) -> Path:
    from train.config import expand_path

    if args.out:
        return expand_path(args.out)
    if cfg_out:
        return expand_path(cfg_out)
    name = Path(args.config).stem if args.config else "train"
    return Path("runs") / name


def run(args: argparse.Namespace) -> int:
    from edgefer.config import ConfigError, merge_nested, parse_overrides, validate_settings
    from train.config import TrainConfig, load_train_config

    try:
        if args.resume:
            if not args.out and not args.config:
                print("edgefer train --resume needs --out RUN_DIR (or the --config that names run.out)", file=sys.stderr)
                return 2
            base = load_train_config(args.config, args.overrides) if args.config else None
            run_dir = resolve_run_dir(args, base.run.out if base else "")
            last = run_dir / "last.pt"
            if not last.is_file():
                print(f"edgefer train --resume: {last} does not exist", file=sys.stderr)
                return 2
            from train.checkpoint import read_payload

            stored = json.loads(read_payload(last)["config"])
            cfg = validate_settings(TrainConfig, merge_nested(stored, parse_overrides(args.overrides)), f"{last} (+ overrides)")
        else:
            if not args.config:
                print("edgefer train needs --config RECIPE.yaml (see configs/train/)", file=sys.stderr)
                return 2
            cfg = load_train_config(args.config, args.overrides)
            run_dir = resolve_run_dir(args, cfg.run.out)
    except ConfigError as exc:
        print(f"edgefer train: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        return 0
    if not args.resume and (run_dir / "last.pt").exists():
        print(f"edgefer train: {run_dir} already holds a run (last.pt); use --resume to continue it "
              "or --out NEW_DIR for a new run", file=sys.stderr)
        return 2

    import logging

    from train.run_lock import RunFolderBusy, locked_run_dir, save_on_sigterm
    from train.trainer import Trainer

    save_on_sigterm()
    try:
        with locked_run_dir(run_dir):
            summary = Trainer(cfg, run_dir, resume=args.resume).fit()
    except RunFolderBusy as exc:
        print(f"edgefer train: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, ValueError, FileNotFoundError, NotADirectoryError) as exc:
        logging.getLogger(__name__).debug("training failed", exc_info=True)
        print(f"edgefer train: {exc}", file=sys.stderr)
        return 2
    if summary.get("stopped"):
        print(f"stopped at epoch {summary['epoch']}, step {summary['step']} (run.stop_after_steps); "
              f"continue with: edgefer train --out {run_dir} --resume")
    elif not summary:
        print(f"nothing to do: {run_dir} already finished optim.epochs={cfg.optim.epochs} "
              "(pass a larger optim.epochs=N with --resume to continue)")
    else:
        best = summary.get("best", {})
        print(f"run folder: {run_dir}")
        print(f"best: epoch {best.get('epoch')}, val accuracy {best.get('val_accuracy', float('nan')):.4f}, "
              f"macro-F1 {best.get('val_macro_f1', float('nan')):.4f}, att_cos {best.get('val_att_cos', float('nan')):.3f}")
        print(f"checkpoints: {run_dir / 'best.pt'}, {run_dir / 'last.pt'}")
    return 0
