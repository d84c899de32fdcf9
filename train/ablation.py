"""`edgefer ablate --plan PLAN.yaml`: train a base recipe with one change at a time, report side by side.

A plan names a base recipe, overrides common to every candidate (usually a short schedule) and the
candidates, each a list of `key=value` overrides on top (see `configs/train/ablation/`). Each
candidate is one ordinary `edgefer train` run in `<out>/<name>`, so it is resumable: running the plan
again continues unfinished candidates and skips finished ones. Candidates run as `--jobs` parallel
processes (one core each on a small CPU: `run.threads=1` in the plan's common overrides), under
`nice` so interactive work keeps the machine. Selection uses the validation split only (carved
from train); the test split is never read here.

The report (printed, and written as `<out>/ablation.json` and `<out>/ablation.md`) gives per
candidate the best and final validation accuracy, macro-F1, ATT-COS, the epoch of the best, and the
mean minutes per epoch, with the binomial standard error of the accuracy (how large a difference
the validation split can resolve).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from train.curves import read_history

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    name: str
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    base: Path
    common: tuple[str, ...]
    candidates: tuple[Candidate, ...]
    out: Path


@dataclass
class Outcome:
    name: str
    overrides: list[str]
    epochs_done: int
    epochs: int
    best_epoch: int | None
    best_val_accuracy: float | None
    final_val_accuracy: float | None
    final_val_macro_f1: float | None
    final_val_att_cos: float | None
    final_train_accuracy: float | None
    minutes_per_epoch: float | None
    val_n: int | None


def _overrides(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        return tuple(f"{k}={json.dumps(v) if isinstance(v, (list, dict)) else v}" for k, v in value.items())
    if isinstance(value, list) and all(isinstance(v, str) and "=" in v for v in value):
        return tuple(value)
    raise ValueError(f"{where}: expected a mapping of key: value or a list of 'key=value' strings")


def load_plan(path: str | Path) -> Plan:
    """The plan at `path`; errors name the file and the field."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"ablation plan {p}: cannot read it ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"ablation plan {p}: expected a mapping with base, common, candidates, out")
    unknown = set(raw) - {"base", "common", "candidates", "out"}
    if unknown:
        raise ValueError(f"ablation plan {p}: unknown field(s) {', '.join(sorted(unknown))}")
    if "base" not in raw or "candidates" not in raw:
        raise ValueError(f"ablation plan {p}: 'base' and 'candidates' are required")
    base = Path(raw["base"])
    if not base.is_absolute():
        base = Path.cwd() / base
    if not base.is_file():
        raise ValueError(f"ablation plan {p}: base recipe {base} does not exist")
    cands = raw["candidates"]
    if not isinstance(cands, dict) or not cands:
        raise ValueError(f"ablation plan {p}: 'candidates' must map names to overrides")
    candidates = tuple(Candidate(str(n), _overrides(v, f"{p}: candidates.{n}")) for n, v in cands.items())
    return Plan(base, _overrides(raw.get("common"), f"{p}: common"), candidates, Path(raw.get("out", f"runs/ablation/{p.stem}")))


def _epochs(plan: Plan, cand: Candidate) -> int:
    from train.config import load_train_config

    return load_train_config(plan.base, plan.common + cand.overrides).optim.epochs


def outcome(plan: Plan, cand: Candidate) -> Outcome:
    rows = read_history(plan.out / cand.name)
    epochs = _epochs(plan, cand)
    best = max(rows, key=lambda r: (r["val_accuracy"], -r["epoch"])) if rows else None
    last = rows[-1] if rows else None
    return Outcome(
        name=cand.name,
        overrides=list(cand.overrides),
        epochs_done=len(rows),
        epochs=epochs,
        best_epoch=best["epoch"] if best else None,
        best_val_accuracy=best["val_accuracy"] if best else None,
        final_val_accuracy=last["val_accuracy"] if last else None,
        final_val_macro_f1=last["val_macro_f1"] if last else None,
        final_val_att_cos=last["val_att_cos"] if last else None,
        final_train_accuracy=last["train_acc"] if last else None,
        minutes_per_epoch=(sum(r["train_seconds"] for r in rows) / len(rows) / 60.0) if rows else None,
        val_n=last.get("val_n") if last else None,
    )


def _command(plan: Plan, cand: Candidate) -> list[str]:
    run_dir = plan.out / cand.name
    cmd = [sys.executable, "-m", "edgefer.cli", "train", "--out", str(run_dir)]
    if (run_dir / "last.pt").is_file():
        cmd.append("--resume")
    else:
        cmd += ["--config", str(plan.base)]
    return cmd + list(plan.common) + list(cand.overrides) + ["run.progress=false"]


def run_plan(plan: Plan, jobs: int, nice: int) -> list[Outcome]:
    """Run every unfinished candidate, `jobs` at a time; logs go to `<out>/<name>.log`."""
    plan.out.mkdir(parents=True, exist_ok=True)
    todo = [c for c in plan.candidates if (o := outcome(plan, c)).epochs_done < o.epochs]
    running: list[tuple[Candidate, subprocess.Popen]] = []
    failed: list[str] = []
    try:
        while todo or running:
            while todo and len(running) < jobs:
                cand = todo.pop(0)
                cmd = _command(plan, cand)
                log.info("ablation: starting %s: %s", cand.name, " ".join(cmd[3:]))
                fh = open(plan.out / f"{cand.name}.log", "a", encoding="utf-8")
                proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                        preexec_fn=(lambda: os.nice(nice)) if nice else None)
                fh.close()
                running.append((cand, proc))
            time.sleep(2.0)
            for cand, proc in list(running):
                if proc.poll() is not None:
                    running.remove((cand, proc))
                    if proc.returncode != 0:
                        failed.append(cand.name)
                        log.error("ablation: %s failed (exit %d), see %s", cand.name, proc.returncode,
                                  plan.out / f"{cand.name}.log")
                    else:
                        log.info("ablation: %s finished", cand.name)
    except KeyboardInterrupt:  # SIGTERM reaches the children too: each saves last.pt for --resume
        for _, proc in running:
            proc.terminate()
        for _, proc in running:
            proc.wait()
        raise
    if failed:
        raise RuntimeError(f"ablation candidates failed: {', '.join(failed)}")
    return [outcome(plan, c) for c in plan.candidates]


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def report(outcomes: list[Outcome], plan: Plan) -> str:
    """A markdown table, with the reference (first candidate) differences and the split's SE."""
    ref = outcomes[0].best_val_accuracy if outcomes else None
    lines = [
        f"Base recipe `{plan.base.name}` with `{' '.join(plan.common)}`; validation split only.",
        "",
        "| candidate | overrides | epochs | best val acc (epoch) | vs first | final val acc | macro-F1 | ATT-COS | train acc "
        "| min/epoch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        delta = None if (ref is None or o.best_val_accuracy is None) else 100 * (o.best_val_accuracy - ref)
        lines.append(
            f"| {o.name} | `{' '.join(o.overrides) or '(base)'}` | {o.epochs_done}/{o.epochs} | "
            f"{_fmt(o.best_val_accuracy, '.4f')} ({o.best_epoch or '-'}) | {_fmt(delta, '+.1f')} | "
            f"{_fmt(o.final_val_accuracy, '.4f')} | {_fmt(o.final_val_macro_f1, '.4f')} | "
            f"{_fmt(o.final_val_att_cos, '.3f')} | {_fmt(o.final_train_accuracy, '.3f')} | "
            f"{_fmt(o.minutes_per_epoch, '.1f')} |"
        )
    n = next((o.val_n for o in outcomes if o.val_n), None)
    acc = ref or 0.6
    if n:
        se = math.sqrt(acc * (1 - acc) / n)
        lines += ["", f"Validation images: {n}; binomial standard error of one accuracy about {100 * se:.1f} points "
                      f"(of a difference between two runs about {100 * se * math.sqrt(2):.1f})."]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plan", required=True, help="ablation plan (YAML), e.g. configs/train/ablation/fer2013_recipe.yaml")
    parser.add_argument("--jobs", type=int, default=2, help="candidates trained at once (default 2)")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the training processes (0 = none)")
    parser.add_argument("--report-only", action="store_true", help="print the table of what has run, train nothing")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        plan = load_plan(args.plan)
        if args.report_only:
            outcomes = [outcome(plan, c) for c in plan.candidates]
        else:
            outcomes = run_plan(plan, max(1, args.jobs), args.nice)
    except (ValueError, RuntimeError) as exc:
        print(f"edgefer ablate: {exc}", file=sys.stderr)
        return 2
    table = report(outcomes, plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / "ablation.md").write_text(table + "\n", encoding="utf-8")
    (plan.out / "ablation.json").write_text(json.dumps([asdict(o) for o in outcomes], indent=1), encoding="utf-8")
    print(table)
    return 0
