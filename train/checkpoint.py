"""Training checkpoints in a safe format, and `load_checkpoint` for evaluation and export.

A checkpoint is one `torch.save` of a dict holding only tensors, numbers, strings, lists and dicts
(structured data travels as JSON strings), so it loads with `torch.load(weights_only=True)`: opening
a checkpoint never executes code from it. It holds the model weights and the spec to rebuild the
architecture, the optimizer / scheduler / grad-scaler states, epoch and step counters, the resolved
config, the class order, the `ModelContract` (JSON) and the metrics.

Writes go to a temp file that is renamed into place, so an interrupted save never destroys the
previous `last.pt`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from edgefer.atomic_write import atomic_path
from edgefer.classes import EXPRESSIONS
from edgefer.contract import ModelContract
from train.model import AUGuidedNet, ModelSpec, build_model

FORMAT = "edgefer.train.checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint. `model` is in eval mode on `map_location`."""

    model: AUGuidedNet
    contract: ModelContract
    config: dict[str, Any]
    metrics: dict[str, Any]
    epoch: int
    step: int = 0
    spec: ModelSpec | None = None
    path: Path | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def checkpoint_payload(
    model: torch.nn.Module,
    spec: ModelSpec,
    contract: ModelContract,
    config: dict[str, Any],
    epoch: int,
    step: int,
    metrics: dict[str, Any],
    step_in_epoch: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    history: list[dict[str, Any]] | None = None,
    best: dict[str, Any] | None = None,
    ema: Any = None,
) -> dict[str, Any]:
    """`model` always holds the weights that are validated and exported: the averaged ones when
    `ema` (`train.ema.WeightEMA`) is given, in which case the raw training weights travel as
    `train_model` (full checkpoints only) so a resumed run continues from them."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    raw = None
    if ema is not None:
        raw, state = state, ema.state_dict()
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model": state,
        "model_spec": json.dumps(spec.to_dict()),
        "contract": contract.to_json(),
        "config": json.dumps(config),
        "classes": list(EXPRESSIONS),
        "epoch": int(epoch),
        "step": int(step),
        "step_in_epoch": int(step_in_epoch),
        "metrics": json.dumps(metrics),
        "history": json.dumps(history or []),
        "best": json.dumps(best or {}),
        "torch_rng": torch.get_rng_state(),
    }
    if ema is not None:
        payload["ema_updates"] = int(ema.updates)
        if optimizer is not None:
            payload["train_model"] = raw
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        payload["scheduler"] = scheduler.state_dict()
    if scaler is not None:
        payload["scaler"] = scaler.state_dict()
    return payload


def save_payload(payload: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_payload(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw dict (weights_only); errors name the file and what is wrong with it."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {p} does not exist")
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle/zip errors come in many types
        raise ValueError(f"checkpoint {p} is not a readable edgefer checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"checkpoint {p} is not an edgefer training checkpoint (format {FORMAT!r} expected)")
    if int(payload.get("version", 0)) > VERSION:
        raise ValueError(f"checkpoint {p} has version {payload.get('version')}; this edgefer reads up to {VERSION}")
    if list(payload.get("classes", [])) != list(EXPRESSIONS):
        raise ValueError(f"checkpoint {p} uses class order {payload.get('classes')}, expected {list(EXPRESSIONS)}")
    return payload


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model from a checkpoint (`best.pt` or `last.pt`), weights loaded, in eval mode."""
    payload = read_payload(path, map_location)
    spec = ModelSpec.from_dict(json.loads(payload["model_spec"]))
    model = build_model(spec, pretrained=False)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {path}: weights do not fit the recorded model spec ({exc})") from exc
    model.to(map_location).eval()
    contract = ModelContract.from_json(payload["contract"], source=str(path))
    return Checkpoint(
        model=model,
        contract=contract,
        config=json.loads(payload["config"]),
        metrics=json.loads(payload["metrics"]),
        epoch=int(payload["epoch"]),
        step=int(payload["step"]),
        spec=spec,
        path=Path(path),
        history=json.loads(payload.get("history", "[]")),
    )
