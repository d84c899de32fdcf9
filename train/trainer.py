"""The training loop: AU-guided loss, validation every epoch, best/last checkpoints, exact resume.

Runs on one CPU (plain fp32, `run.threads` intra-op threads), one GPU (bf16/fp16 autocast, GradScaler
for fp16) or several GPUs through torchrun (DDP; CPU runs under torchrun use gloo). Only rank 0
logs, validates and writes; other ranks wait at barriers.

Run folder: `config.yaml` (resolved recipe), `train.log`, `history.jsonl` (one line per epoch),
`tb/` (TensorBoard), `last.pt` (every epoch, every `run.save_every_steps` steps and on Ctrl-C) and
`best.pt` (best validation accuracy; the validation split is carved from train, never the test split).

This module is the loop; what it stands on lives beside it: `train.distributed` (process group,
device), `train.precision` (autocast dtype), `train.seeding`, `train.schedule` (optimizer, lr factor)
and `train.meters` (the typed per-epoch records and the names they are written under). Their names
stay importable from here.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import yaml

from edgefer.classes import EXPRESSIONS
from edgefer.contract import ModelContract
from train.augment import AugmentParams
from train.checkpoint import checkpoint_payload, read_payload, save_payload
from train.config import TrainConfig
from train.data import TrainData, build_maps, prepare_data
from train.distributed import DistInfo, barrier, init_distributed, resolve_device, shutdown
from train.ema import WeightEMA
from train.losses import AUGuidedLoss, map_cosine
from train.meters import BestEpoch, EpochMeter, TrainStats, ValStats, history_record
from train.metrics import class_average, classification_report
from train.mixing import mix_batch
from train.model import AUGuidedNet, ModelSpec, build_model
from train.precision import amp_dtype, cpu_has_native_bf16
from train.schedule import lr_factor, make_optimizer
from train.seeding import seed_everything
from train.torch_data import EpochSampler, FERDataset

if TYPE_CHECKING:
    from torch.utils.data import DataLoader
    from torch.utils.tensorboard import SummaryWriter

# The helpers moved to their own modules (issue 13); these names stay importable from here.
__all__ = [
    "PRECOMPUTE_MAPS_BYTES", "DistInfo", "RunParts", "StopRequested", "Trainer", "amp_dtype", "barrier",
    "cpu_has_native_bf16", "init_distributed", "lr_factor", "make_contract", "make_optimizer", "model_spec",
    "resolve_device", "seed_everything",
]

log = logging.getLogger(__name__)

#: Keep the training split's AU maps in memory (uint8) up to this size; beyond, draw them per sample.
PRECOMPUTE_MAPS_BYTES = 2 * 1024**3


def model_spec(cfg: TrainConfig) -> ModelSpec:
    m = cfg.model
    return ModelSpec(
        backbone=m.backbone,
        in_chans=cfg.in_chans,
        output_stride=m.output_stride,
        attention_stage=m.attention_stage,
        drop_rate=m.drop_rate,
        backbone_kwargs=dict(m.backbone_kwargs),
    )


def make_contract(
    cfg: TrainConfig, model: AUGuidedNet, data: TrainData, metrics: dict[str, Any] | None = None
) -> ModelContract:
    """What the exported model will say about itself (framing measured on the training landmarks)."""
    from edgefer.align import framing_from_landmarks

    stored = data.train.stored_size
    if not data.train.has_landmarks.any():
        raise ValueError(
            "no training image has landmarks, so the crop framing cannot be measured: point data.landmarks "
            "at a landmark cache (`edgefer landmarks DATA_DIR`) or set data.compute_missing_landmarks=true"
        )
    framing = framing_from_landmarks(data.train.landmarks, (stored, stored))
    size = cfg.model.input_size
    return ModelContract(
        classes=EXPRESSIONS,
        input_size=(size, size),
        color=cfg.data.color,
        mean=tuple(float(v) for v in data.mean),
        std=tuple(float(v) for v in data.std),
        framing=framing,
        attention_layer=model.attention_layer,
        attention_size=model.attention_size(size),
        au_aligned=cfg.loss.au_lambda > 0,
        trained_on=cfg.data.name,
        backbone=cfg.model.backbone,
        extra={
            "au_lambda": cfg.loss.au_lambda,
            "output_stride": cfg.model.output_stride,
            "stored_size": stored,
            "cam": "class activation maps: head weights x final features (forward_with_cam)",
            **({"val": metrics} if metrics else {}),
        },
    )


class StopRequested(Exception):
    """`run.stop_after_steps` reached: `last.pt` is saved and the run can be resumed."""


@dataclass
class RunParts:
    """Everything a run builds once its folder and log exist: data, model, optimizer, schedule, loss.

    Built in one piece by `Trainer._prepare` (which reads and packs the data, so it runs inside
    `fit()`, after the log file is open); a `Trainer` either has all of it or none.
    """

    data: TrainData
    train_set: FERDataset
    val_set: FERDataset
    sampler: EpochSampler
    steps_per_epoch: int
    spec: ModelSpec
    model: AUGuidedNet
    #: `model` wrapped in DistributedDataParallel under torchrun, else `model` itself
    ddp_model: torch.nn.Module
    #: the weight average; replaced when a resumed run switches it on
    ema: WeightEMA | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    loss_fn: AUGuidedLoss
    #: what the exported model will say about itself; its `val` metrics are renewed every epoch
    contract: ModelContract
    #: normalisation, shaped (1, C, 1, 1) on the device
    mean: torch.Tensor
    std: torch.Tensor


class Trainer:
    """Owns one run folder. `fit()` trains to `optim.epochs` and returns the final summary."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, resume: bool = False) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.resume = resume
        self.info = init_distributed("cuda" if cfg.run.device != "cpu" and torch.cuda.is_available() else "cpu")
        self.device = resolve_device(cfg.run.device, self.info)
        self.amp = amp_dtype(cfg.run.amp, self.device)
        if cfg.run.threads and self.device.type == "cpu":
            torch.set_num_threads(cfg.run.threads)
        if cfg.run.deterministic:
            torch.backends.cudnn.benchmark = False
            torch.use_deterministic_algorithms(True, warn_only=True)
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        seed_everything(cfg.run.seed + self.info.rank)
        # Opened by fit() (rank 0 only), closed when it returns.
        self.writer: SummaryWriter | None = None
        self._log_handler: logging.Handler | None = None
        # Built by fit() before the first step.
        self._parts: RunParts | None = None
        # Where the run stands; `last.pt` carries these across a resume.
        self.epoch = 0
        self.step = 0
        self.step_in_epoch = 0
        self.steps_this_run = 0
        self.history: list[dict[str, Any]] = []
        self.best: BestEpoch | None = None

    @property
    def parts(self) -> RunParts:
        if self._parts is None:
            raise RuntimeError("the run is not prepared yet: Trainer.fit() builds the model and the data")
        return self._parts

    @property
    def model(self) -> AUGuidedNet:
        """The raw training weights (not the average)."""
        return self.parts.model

    @property
    def eval_model(self) -> AUGuidedNet:
        """The weights that are validated, saved as `best.pt` and exported: the EMA when it is on."""
        ema = self.parts.ema
        return cast(AUGuidedNet, ema.module) if ema is not None else self.parts.model

    # ----------------------------------------------------------------------------------- set-up
    def _setup_logging(self) -> None:
        if not self.info.main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.run_dir / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO)
        root = logging.getLogger()
        root.addHandler(handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        self._log_handler = handler
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.cfg.model_dump(mode="json"), sort_keys=False))
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir / "tb"))

    def _prepare(self) -> RunParts:
        cfg = self.cfg
        # Rank 0 packs (and caches) the archive first; the other ranks then just load it.
        if self.info.main:
            data = prepare_data(cfg, progress=cfg.run.progress)
        barrier(self.info)
        if not self.info.main:
            data = prepare_data(cfg, progress=False)
        size = cfg.model.input_size
        a = cfg.augment
        params = AugmentParams(a.enabled, a.hflip, a.rotate_deg, (a.scale[0], a.scale[1]), a.translate, a.brightness, a.contrast,
                               a.erase, a.camera)
        t0 = time.perf_counter()
        va_maps, va_valid = build_maps(data.val, size)
        tr_maps: np.ndarray | None
        tr_valid: np.ndarray | None
        if len(data.train) * size * size <= PRECOMPUTE_MAPS_BYTES:
            tr_maps, tr_valid = build_maps(data.train, size)
            log.info(
                "AU maps at %dx%d: train %d/%d valid, val %d/%d valid (%.1fs)",
                size, size, tr_valid.sum(), len(tr_valid), va_valid.sum(), len(va_valid), time.perf_counter() - t0,
            )
        else:
            tr_maps = tr_valid = None
            log.info("AU maps at %dx%d drawn per sample (too many to keep: %d images); val %d/%d valid",
                     size, size, len(data.train), va_valid.sum(), len(va_valid))
        train_set = FERDataset(data.train.images, data.train.labels, tr_maps, tr_valid, size, params,
                               cfg.run.seed, landmarks=data.train.landmarks)
        val_set = FERDataset(data.val.images, data.val.labels, va_maps, va_valid, size, None, cfg.run.seed)
        sampler = EpochSampler(len(train_set), cfg.run.seed, self.info.rank, self.info.world, shuffle=True)
        bs = cfg.optim.batch_size
        steps_per_epoch = max(1, sampler.per_rank // bs)
        if cfg.run.max_steps_per_epoch:
            steps_per_epoch = min(steps_per_epoch, cfg.run.max_steps_per_epoch)
        if sampler.per_rank < bs:
            raise ValueError(
                f"optim.batch_size {bs} exceeds the {sampler.per_rank} training images per process; lower it"
            )

        spec = model_spec(cfg)
        model = build_model(spec, cfg.model.pretrained, cfg.model.pretrained_path).to(self.device)
        if cfg.run.channels_last:
            model = model.to(memory_format=torch.channels_last)
        ema = WeightEMA(model, cfg.optim.ema_decay) if cfg.optim.ema_decay > 0 else None
        optimizer = make_optimizer(model, cfg)
        # A lambda, not a callable object: LambdaLR would store an object's attributes in last.pt.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps_per_epoch, cfg))
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        loss_fn = AUGuidedLoss(cfg.loss.au_lambda, cfg.loss.label_smoothing, cfg.loss.align_at)
        contract = make_contract(cfg, model, data)
        mean = torch.tensor(data.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(data.std, dtype=torch.float32).view(1, -1, 1, 1)
        ddp_model: torch.nn.Module = model
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            ddp_model = DistributedDataParallel(model, device_ids=ids)
        return RunParts(
            data=data, train_set=train_set, val_set=val_set, sampler=sampler, steps_per_epoch=steps_per_epoch,
            spec=spec, model=model, ddp_model=ddp_model, ema=ema, optimizer=optimizer, scheduler=scheduler,
            scaler=scaler, loss_fn=loss_fn, contract=contract, mean=mean.to(self.device), std=std.to(self.device),
        )

    def _load_last(self) -> None:
        p = self.parts
        path = self.run_dir / "last.pt"
        payload = read_payload(path, map_location="cpu")
        spec = ModelSpec.from_dict(json.loads(payload["model_spec"]))
        if spec != p.spec:
            raise ValueError(f"{path}: the checkpoint's model {spec} differs from the config's {p.spec}")
        # With EMA, `model` holds the averaged weights and `train_model` the raw ones (train.checkpoint).
        p.model.load_state_dict(payload.get("train_model", payload["model"]))
        if p.ema is not None:
            if "train_model" in payload:
                p.ema.load_state_dict(payload["model"], int(payload.get("ema_updates", 0)))
            else:  # EMA switched on when extending a run: start the average at the current weights
                p.ema = WeightEMA(p.model, self.cfg.optim.ema_decay)
        p.optimizer.load_state_dict(payload["optimizer"])
        p.scheduler.load_state_dict(payload["scheduler"])
        if "scaler" in payload and payload["scaler"]:
            p.scaler.load_state_dict(payload["scaler"])
        self.epoch = int(payload["epoch"])
        self.step = int(payload["step"])
        self.step_in_epoch = int(payload.get("step_in_epoch", 0))
        self.history = json.loads(payload.get("history", "[]"))
        self.best = BestEpoch.from_dict(json.loads(payload.get("best", "{}")))
        if "torch_rng" in payload:
            torch.set_rng_state(payload["torch_rng"])
        log.info("resumed %s at epoch %d, step %d (%d steps into the epoch)", path, self.epoch, self.step, self.step_in_epoch)

    # ---------------------------------------------------------------------------------- helpers
    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        p = self.parts
        x = images.to(self.device, non_blocking=True).float().div_(255.0)
        x = (x - p.mean) / p.std
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.run.channels_last else x

    def _loader(self, dataset: FERDataset, batch_size: int, sampler: EpochSampler | None = None,
                drop_last: bool = False) -> DataLoader:
        from torch.utils.data import DataLoader

        workers = self.cfg.data.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            drop_last=drop_last,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    def _save(self, name: str, metrics: dict[str, Any], step_in_epoch: int = 0, full: bool = True) -> Path:
        p = self.parts
        path = self.run_dir / name
        payload = checkpoint_payload(
            p.model,
            p.spec,
            p.contract,
            self.cfg.model_dump(mode="json"),
            epoch=self.epoch,
            step=self.step,
            metrics=metrics,
            step_in_epoch=step_in_epoch,
            optimizer=p.optimizer if full else None,
            scheduler=p.scheduler if full else None,
            scaler=p.scaler if full else None,
            history=self.history,
            best=self.best.as_dict() if self.best is not None else {},
            ema=p.ema,
        )
        save_payload(payload, path)
        return path

    # ------------------------------------------------------------------------------------ epochs
    def train_epoch(self) -> TrainStats:
        from tqdm import tqdm

        cfg = self.cfg
        p = self.parts
        p.ddp_model.train()
        bs = cfg.optim.batch_size
        p.sampler.set_epoch(self.epoch, self.step_in_epoch * bs)
        loader = self._loader(p.train_set, bs, p.sampler, drop_last=True)
        todo = p.steps_per_epoch - self.step_in_epoch
        meter = EpochMeter()
        bar = tqdm(total=todo, desc=f"epoch {self.epoch + 1}/{cfg.optim.epochs}", unit="step",
                   disable=not (cfg.run.progress and self.info.main), leave=False)
        t0 = time.perf_counter()
        try:
            for images, maps, valid, labels in loader:
                if self.step_in_epoch >= p.steps_per_epoch:
                    break
                x = self._normalise(images)
                labels = labels.to(self.device, non_blocking=True)
                amaps = maps.to(self.device, non_blocking=True).float().div_(255.0)
                valid = valid.to(self.device, non_blocking=True)
                a = cfg.augment
                labels_b: torch.Tensor | None
                if a.enabled and a.mix != "none":
                    # seeded by (seed, epoch, step): a resumed run mixes the same batches the same way
                    rng = np.random.default_rng((cfg.run.seed, self.epoch, self.step_in_epoch, self.info.rank, 0x6D6978))
                    mixed = mix_batch(x, labels, amaps, valid, a.mix, a.mix_alpha, a.mix_prob, rng)
                    x, amaps, valid = mixed.images, mixed.maps, mixed.valid
                    labels_b, lam = mixed.labels_b, mixed.lam
                else:
                    labels_b, lam = None, 1.0
                with torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
                    logits, attention = p.ddp_model(x)
                terms = p.loss_fn(logits, attention, labels, amaps, valid, labels_b, lam)
                p.optimizer.zero_grad(set_to_none=True)
                p.scaler.scale(terms.total).backward()
                if cfg.optim.grad_clip > 0:
                    p.scaler.unscale_(p.optimizer)
                    torch.nn.utils.clip_grad_norm_(p.model.parameters(), cfg.optim.grad_clip)
                p.scaler.step(p.optimizer)
                p.scaler.update()
                p.scheduler.step()
                if p.ema is not None:
                    p.ema.update(p.model)
                self.step += 1
                self.step_in_epoch += 1
                if not math.isfinite(float(terms.total.detach())):
                    raise FloatingPointError(f"loss became {float(terms.total.detach())} at step {self.step}; lower optim.lr")
                acc = float((logits.argmax(1) == labels).float().mean())
                meter.add(float(terms.total.detach()), float(terms.ce), float(terms.align), acc,
                          float(terms.att_cos) if terms.n_valid else None)
                bar.update(1)
                bar.set_postfix(meter.postfix())
                if self.writer is not None and self.step % cfg.run.log_every == 0:
                    w = self.writer
                    w.add_scalar("train/loss", float(terms.total.detach()), self.step)
                    w.add_scalar("train/ce", float(terms.ce), self.step)
                    w.add_scalar("train/align", float(terms.align), self.step)
                    w.add_scalar("train/att_cos", float(terms.att_cos), self.step)
                    w.add_scalar("train/acc", acc, self.step)
                    w.add_scalar("train/lr", p.optimizer.param_groups[0]["lr"], self.step)
                if cfg.run.save_every_steps and self.step % cfg.run.save_every_steps == 0 and self.info.main:
                    self._save("last.pt", {"partial_epoch": True}, step_in_epoch=self.step_in_epoch)
                self.steps_this_run += 1
                if cfg.run.stop_after_steps and self.steps_this_run >= cfg.run.stop_after_steps:
                    if self.step_in_epoch < p.steps_per_epoch:
                        if self.info.main:
                            self._save("last.pt", {"stopped": True}, step_in_epoch=self.step_in_epoch)
                        raise StopRequested
        except KeyboardInterrupt:
            if self.info.main:
                path = self._save("last.pt", {"interrupted": True}, step_in_epoch=self.step_in_epoch)
                log.warning("interrupted at epoch %d step %d; saved %s (continue with --resume)",
                            self.epoch + 1, self.step_in_epoch, path)
            raise
        finally:
            bar.close()
        seconds = time.perf_counter() - t0
        return meter.stats(seconds, meter.batches * bs * self.info.world)

    @torch.no_grad()
    def validate(self) -> ValStats:
        """Accuracy, macro-F1, CE and the attention/AU-map cosine (per class, macro over non-neutral),
        taken where the loss takes it (`loss.align_at`): with `input` it is the paper's ATT-COS at the
        input size; with `attention` a cheaper stand-in at the attention's resolution (`edgefer eval`
        computes the exact metric either way)."""
        from tqdm import tqdm

        model = self.eval_model.eval()
        loader = self._loader(self.parts.val_set, self.cfg.optim.eval_batch_size)
        preds, labels_all, cos_all, valid_all = [], [], [], []
        ce_sum = 0.0
        for images, maps, valid, labels in tqdm(loader, desc="validate", unit="batch", leave=False,
                                                disable=not self.cfg.run.progress):
            x = self._normalise(images)
            with torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
                logits, attention = model(x)
            logits = logits.float().cpu()
            ce_sum += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            cos = map_cosine(attention.float().cpu(), maps.float().div_(255.0), self.cfg.loss.align_at)
            cos_all.append(cos.numpy())
            preds.append(logits.argmax(1).numpy())
            labels_all.append(labels.numpy())
            valid_all.append(valid.numpy())
        y = np.concatenate(labels_all)
        pred = np.concatenate(preds)
        cos_np = np.concatenate(cos_all)
        ok = np.concatenate(valid_all)
        report = classification_report(y, pred)
        att = class_average(cos_np[ok], y[ok])
        return ValStats(
            accuracy=report["accuracy"],
            macro_f1=report["macro_f1"],
            loss=ce_sum / max(1, len(y)),
            att_cos=att.macro,
            n=int(len(y)),
            n_with_map=int(ok.sum()),
            per_class_recall=report["per_class_recall"],
        )

    def _end_epoch(self, train_stats: TrainStats) -> dict[str, Any]:
        """Rank 0 after each epoch: validate, record the epoch, save `last.pt` (and `best.pt` when it
        improved), log. Returns the metrics saved with the checkpoints."""
        cfg = self.cfg
        p = self.parts
        val = self.validate()
        record = history_record(self.epoch, self.step, p.optimizer.param_groups[0]["lr"], train_stats, val)
        self.history.append(record)
        improved = self.best is None or val.accuracy > self.best.val_accuracy
        if improved:
            self.best = BestEpoch.of(self.epoch, val)
        best = self.best.as_dict() if self.best is not None else {}
        metrics = {"val": val.as_dict(), "train": train_stats.as_dict(), "best": best}
        p.contract = make_contract(cfg, p.model, p.data, {
            "accuracy": val.accuracy, "macro_f1": val.macro_f1, "att_cos": val.att_cos, "epoch": self.epoch})
        self._save("last.pt", metrics)
        if improved:
            self._save("best.pt", metrics, full=False)
        with open(self.run_dir / "history.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for k in ("accuracy", "macro_f1", "loss", "att_cos"):
                self.writer.add_scalar(f"val/{k}", getattr(val, k), self.epoch)
            self.writer.add_scalar("train/images_per_s", train_stats.images_per_s, self.epoch)
            self.writer.flush()
        log.info(
            "epoch %d/%d: train loss %.4f acc %.4f att_cos %.3f (%.0f img/s, %.0fs) | "
            "val acc %.4f macro-F1 %.4f att_cos %.3f%s",
            self.epoch, cfg.optim.epochs, train_stats.loss, train_stats.acc,
            train_stats.att_cos, train_stats.images_per_s, train_stats.seconds,
            val.accuracy, val.macro_f1, val.att_cos, " (best)" if improved else "",
        )
        return metrics

    def fit(self) -> dict[str, Any]:
        cfg = self.cfg
        if self.resume and not (self.run_dir / "last.pt").is_file():
            raise FileNotFoundError(f"--resume: {self.run_dir / 'last.pt'} does not exist")
        self._setup_logging()
        self._parts = self._prepare()
        if self.resume:
            self._load_last()
        p = self.parts
        if self.info.main:
            log.info(
                "training %s (%s, attention %s %s, lambda %g) on %d images, %d steps/epoch, device %s%s",
                cfg.model.backbone, f"{cfg.model.input_size}px os{cfg.model.output_stride}",
                p.contract.attention_layer, p.contract.attention_size, cfg.loss.au_lambda,
                len(p.train_set), p.steps_per_epoch, self.device,
                f" amp {self.amp}" if self.amp else "",
            )
        summary: dict[str, Any] = {}
        try:
            while self.epoch < cfg.optim.epochs:
                train_stats = self.train_epoch()
                self.epoch += 1
                self.step_in_epoch = 0
                barrier(self.info)
                if self.info.main:
                    summary = self._end_epoch(train_stats)
                barrier(self.info)
                if cfg.run.stop_after_steps and self.steps_this_run >= cfg.run.stop_after_steps \
                        and self.epoch < cfg.optim.epochs:
                    raise StopRequested
        except StopRequested:
            log.info("stopped after %d steps (run.stop_after_steps) at epoch %d, step %d; continue with --resume",
                     self.steps_this_run, self.epoch, self.step)
            best = self.best.as_dict() if self.best is not None else {}
            summary = {"stopped": True, "epoch": self.epoch, "step": self.step, "best": best}
        finally:
            if self.writer is not None:
                self.writer.close()
            if self._log_handler is not None:
                logging.getLogger().removeHandler(self._log_handler)
                self._log_handler.close()
            shutdown(self.info)
        return summary
