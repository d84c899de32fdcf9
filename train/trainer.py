"""The training loop: AU-guided loss, validation every epoch, best/last checkpoints, exact resume.

Runs on one CPU (plain fp32, `run.threads` intra-op threads), one GPU (bf16/fp16 autocast, GradScaler
for fp16) or several GPUs through torchrun (DDP; CPU runs under torchrun use gloo). Only rank 0
logs, validates and writes; other ranks wait at barriers.

Run folder: `config.yaml` (resolved recipe), `train.log`, `history.jsonl` (one line per epoch),
`tb/` (TensorBoard), `last.pt` (every epoch, every `run.save_every_steps` steps and on Ctrl-C) and
`best.pt` (best validation accuracy; the validation split is carved from train, never the test split).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml

from edgefer.classes import EXPRESSIONS
from edgefer.contract import ModelContract
from train.augment import AugmentParams
from train.checkpoint import checkpoint_payload, read_payload, save_payload
from train.config import TrainConfig
from train.data import TrainData, build_maps, prepare_data
from train.ema import WeightEMA
from train.losses import AUGuidedLoss, map_cosine
from train.metrics import class_average, classification_report
from train.mixing import mix_batch
from train.model import AUGuidedNet, ModelSpec, build_model
from train.torch_data import EpochSampler, FERDataset

log = logging.getLogger(__name__)

#: Keep the training split's AU maps in memory (uint8) up to this size; beyond, draw them per sample.
PRECOMPUTE_MAPS_BYTES = 2 * 1024**3


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device_kind: str) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return DistInfo(rank, world, local)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def resolve_device(choice: str, info: DistInfo) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("run.device=cuda but no CUDA device is available (torch.cuda.is_available() is False)")
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU computes bf16 natively: AVX512-BF16 or AMX-BF16 on x86, the `bf16`
    feature on Arm (Linux `/proc/cpuinfo`). Elsewhere False: emulated bf16 is slower than fp32."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return bool(set(value.split()) & {"avx512_bf16", "amx_bf16", "bf16"})
    return False


def amp_dtype(choice: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `run.amp` on this device (None = plain fp32)."""
    if choice == "off":
        return None
    if device.type == "cpu":
        if choice == "fp16":
            raise ValueError("run.amp=fp16 needs a CUDA GPU; on a CPU use run.amp=bf16 or off")
        return torch.bfloat16 if choice == "bf16" or cpu_has_native_bf16() else None
    if choice == "fp16":
        return torch.float16
    if choice == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_factor(step: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Multiplier of the base lr after `step` optimizer steps (warm-up, then cosine/step/constant)."""
    o = cfg.optim
    epoch_f = step / max(1, steps_per_epoch)
    floor = o.min_lr / o.lr
    if o.warmup_epochs > 0 and epoch_f < o.warmup_epochs:
        return max(floor, (epoch_f + 1.0 / max(1, steps_per_epoch)) / o.warmup_epochs)
    if o.schedule == "cosine":
        span = max(1e-9, o.epochs - o.warmup_epochs)
        progress = min(1.0, (epoch_f - o.warmup_epochs) / span)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if o.schedule == "step":
        return max(floor, o.gamma ** (int(epoch_f) // o.step_size))
    return 1.0


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on weights only (not on BatchNorm/bias), the usual choice for small CNNs."""
    o = cfg.optim
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0)
    return torch.optim.AdamW(groups, lr=o.lr)


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
        self.writer = None
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}

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

    def _prepare(self) -> None:
        cfg = self.cfg
        # Rank 0 packs (and caches) the archive first; the other ranks then just load it.
        if self.info.main:
            self.data = prepare_data(cfg, progress=cfg.run.progress)
        barrier(self.info)
        if not self.info.main:
            self.data = prepare_data(cfg, progress=False)
        size = cfg.model.input_size
        a = cfg.augment
        params = AugmentParams(a.enabled, a.hflip, a.rotate_deg, tuple(a.scale), a.translate, a.brightness, a.contrast,
                               a.erase, a.camera)
        t0 = time.perf_counter()
        va_maps, va_valid = build_maps(self.data.val, size)
        if len(self.data.train) * size * size <= PRECOMPUTE_MAPS_BYTES:
            tr_maps, tr_valid = build_maps(self.data.train, size)
            log.info(
                "AU maps at %dx%d: train %d/%d valid, val %d/%d valid (%.1fs)",
                size, size, tr_valid.sum(), len(tr_valid), va_valid.sum(), len(va_valid), time.perf_counter() - t0,
            )
        else:
            tr_maps = tr_valid = None
            log.info("AU maps at %dx%d drawn per sample (too many to keep: %d images); val %d/%d valid",
                     size, size, len(self.data.train), va_valid.sum(), len(va_valid))
        self.train_set = FERDataset(self.data.train.images, self.data.train.labels, tr_maps, tr_valid, size, params,
                                    cfg.run.seed, landmarks=self.data.train.landmarks)
        self.val_set = FERDataset(self.data.val.images, self.data.val.labels, va_maps, va_valid, size, None, cfg.run.seed)
        self.sampler = EpochSampler(len(self.train_set), cfg.run.seed, self.info.rank, self.info.world, shuffle=True)
        bs = cfg.optim.batch_size
        self.steps_per_epoch = max(1, self.sampler.per_rank // bs)
        if cfg.run.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.run.max_steps_per_epoch)
        if self.sampler.per_rank < bs:
            raise ValueError(
                f"optim.batch_size {bs} exceeds the {self.sampler.per_rank} training images per process; lower it"
            )

        self.spec = model_spec(cfg)
        self.model = build_model(self.spec, cfg.model.pretrained, cfg.model.pretrained_path).to(self.device)
        if cfg.run.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ema = WeightEMA(self.model, cfg.optim.ema_decay) if cfg.optim.ema_decay > 0 else None
        self.optimizer = make_optimizer(self.model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, self.steps_per_epoch, cfg)
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.loss_fn = AUGuidedLoss(cfg.loss.au_lambda, cfg.loss.label_smoothing, cfg.loss.align_at)
        self.contract = make_contract(cfg, self.model, self.data)
        mean = torch.tensor(self.data.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.data.std, dtype=torch.float32).view(1, -1, 1, 1)
        self.mean, self.std = mean.to(self.device), std.to(self.device)
        self.ddp_model: torch.nn.Module = self.model
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = DistributedDataParallel(self.model, device_ids=ids)
        self.epoch = 0
        self.step = 0
        self.step_in_epoch = 0
        self.steps_this_run = 0
        if self.resume:
            self._load_last()

    def _load_last(self) -> None:
        path = self.run_dir / "last.pt"
        payload = read_payload(path, map_location="cpu")
        spec = ModelSpec.from_dict(json.loads(payload["model_spec"]))
        if spec != self.spec:
            raise ValueError(f"{path}: the checkpoint's model {spec} differs from the config's {self.spec}")
        # With EMA, `model` holds the averaged weights and `train_model` the raw ones (train.checkpoint).
        self.model.load_state_dict(payload.get("train_model", payload["model"]))
        if self.ema is not None:
            if "train_model" in payload:
                self.ema.load_state_dict(payload["model"], int(payload.get("ema_updates", 0)))
            else:  # EMA switched on when extending a run: start the average at the current weights
                self.ema = WeightEMA(self.model, self.cfg.optim.ema_decay)
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        if "scaler" in payload and payload["scaler"]:
            self.scaler.load_state_dict(payload["scaler"])
        self.epoch = int(payload["epoch"])
        self.step = int(payload["step"])
        self.step_in_epoch = int(payload.get("step_in_epoch", 0))
        self.history = json.loads(payload.get("history", "[]"))
        self.best = json.loads(payload.get("best", "{}"))
        if "torch_rng" in payload:
            torch.set_rng_state(payload["torch_rng"])
        log.info("resumed %s at epoch %d, step %d (%d steps into the epoch)", path, self.epoch, self.step, self.step_in_epoch)

    # ---------------------------------------------------------------------------------- helpers
    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, non_blocking=True).float().div_(255.0)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.run.channels_last else x

    @property
    def eval_model(self) -> AUGuidedNet:
        """The weights that are validated, saved as `best.pt` and exported: the EMA when it is on."""
        return self.ema.module if self.ema is not None else self.model

    def _loader(self, dataset: FERDataset, batch_size: int, sampler=None, drop_last: bool = False):
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
        path = self.run_dir / name
        payload = checkpoint_payload(
            self.model,
            self.spec,
            self.contract,
            self.cfg.model_dump(mode="json"),
            epoch=self.epoch,
            step=self.step,
            metrics=metrics,
            step_in_epoch=step_in_epoch,
            optimizer=self.optimizer if full else None,
            scheduler=self.scheduler if full else None,
            scaler=self.scaler if full else None,
            history=self.history,
            best=self.best,
            ema=self.ema,
        )
        save_payload(payload, path)
        return path

    # ------------------------------------------------------------------------------------ epochs
    def train_epoch(self) -> dict[str, float]:
        from tqdm import tqdm

        cfg = self.cfg
        self.ddp_model.train()
        bs = cfg.optim.batch_size
        self.sampler.set_epoch(self.epoch, self.step_in_epoch * bs)
        loader = self._loader(self.train_set, bs, self.sampler, drop_last=True)
        todo = self.steps_per_epoch - self.step_in_epoch
        sums = {"loss": 0.0, "ce": 0.0, "align": 0.0, "att_cos": 0.0, "acc": 0.0}
        n_batches = 0
        n_cos = 0
        bar = tqdm(total=todo, desc=f"epoch {self.epoch + 1}/{cfg.optim.epochs}", unit="step",
                   disable=not (cfg.run.progress and self.info.main), leave=False)
        t0 = time.perf_counter()
        try:
            for images, maps, valid, labels in loader:
                if self.step_in_epoch >= self.steps_per_epoch:
                    break
                x = self._normalise(images)
                labels = labels.to(self.device, non_blocking=True)
                amaps = maps.to(self.device, non_blocking=True).float().div_(255.0)
                valid = valid.to(self.device, non_blocking=True)
                a = cfg.augment
                if a.enabled and a.mix != "none":
                    # seeded by (seed, epoch, step): a resumed run mixes the same batches the same way
                    rng = np.random.default_rng((cfg.run.seed, self.epoch, self.step_in_epoch, self.info.rank, 0x6D6978))
                    mixed = mix_batch(x, labels, amaps, valid, a.mix, a.mix_alpha, a.mix_prob, rng)
                    x, amaps, valid = mixed.images, mixed.maps, mixed.valid
                    labels_b, lam = mixed.labels_b, mixed.lam
                else:
                    labels_b, lam = None, 1.0
                with torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
                    logits, attention = self.ddp_model(x)
                terms = self.loss_fn(logits, attention, labels, amaps, valid, labels_b, lam)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(terms.total).backward()
                if cfg.optim.grad_clip > 0:
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.scheduler.step()
                if self.ema is not None:
                    self.ema.update(self.model)
                self.step += 1
                self.step_in_epoch += 1
                if not math.isfinite(float(terms.total.detach())):
                    raise FloatingPointError(f"loss became {float(terms.total.detach())} at step {self.step}; lower optim.lr")
                acc = float((logits.argmax(1) == labels).float().mean())
                sums["loss"] += float(terms.total.detach())
                sums["ce"] += float(terms.ce)
                sums["align"] += float(terms.align)
                sums["acc"] += acc
                if terms.n_valid:
                    sums["att_cos"] += float(terms.att_cos)
                    n_cos += 1
                n_batches += 1
                bar.update(1)
                bar.set_postfix(loss=f"{sums['loss'] / n_batches:.3f}", acc=f"{sums['acc'] / n_batches:.3f}",
                                cos=f"{sums['att_cos'] / max(1, n_cos):.3f}")
                if self.writer is not None and self.step % cfg.run.log_every == 0:
                    w = self.writer
                    w.add_scalar("train/loss", float(terms.total.detach()), self.step)
                    w.add_scalar("train/ce", float(terms.ce), self.step)
                    w.add_scalar("train/align", float(terms.align), self.step)
                    w.add_scalar("train/att_cos", float(terms.att_cos), self.step)
                    w.add_scalar("train/acc", acc, self.step)
                    w.add_scalar("train/lr", self.optimizer.param_groups[0]["lr"], self.step)
                if cfg.run.save_every_steps and self.step % cfg.run.save_every_steps == 0 and self.info.main:
                    self._save("last.pt", {"partial_epoch": True}, step_in_epoch=self.step_in_epoch)
                self.steps_this_run += 1
                if cfg.run.stop_after_steps and self.steps_this_run >= cfg.run.stop_after_steps:
                    if self.step_in_epoch < self.steps_per_epoch:
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
        n = max(1, n_batches)
        out = {k: v / n for k, v in sums.items() if k != "att_cos"}
        out["att_cos"] = sums["att_cos"] / max(1, n_cos)
        out["seconds"] = seconds
        out["images_per_s"] = n_batches * bs * self.info.world / max(seconds, 1e-9)
        return out

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        """Accuracy, macro-F1, CE and the attention/AU-map cosine (per class, macro over non-neutral),
        taken where the loss takes it (`loss.align_at`): with `input` it is the paper's ATT-COS at the
        input size; with `attention` a cheaper stand-in at the attention's resolution (`edgefer eval`
        computes the exact metric either way)."""
        from tqdm import tqdm

        model = self.eval_model.eval()
        loader = self._loader(self.val_set, self.cfg.optim.eval_batch_size)
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
        p = np.concatenate(preds)
        cos = np.concatenate(cos_all)
        ok = np.concatenate(valid_all)
        report = classification_report(y, p)
        att = class_average(cos[ok], y[ok])
        return {
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"],
            "loss": ce_sum / max(1, len(y)),
            "att_cos": att.macro,
            "n": int(len(y)),
            "n_with_map": int(ok.sum()),
            "per_class_recall": report["per_class_recall"],
        }

    def fit(self) -> dict[str, Any]:
        cfg = self.cfg
        if self.resume and not (self.run_dir / "last.pt").is_file():
            raise FileNotFoundError(f"--resume: {self.run_dir / 'last.pt'} does not exist")
        self._setup_logging()
        self._prepare()
        if self.info.main:
            log.info(
                "training %s (%s, attention %s %s, lambda %g) on %d images, %d steps/epoch, device %s%s",
                cfg.model.backbone, f"{cfg.model.input_size}px os{cfg.model.output_stride}",
                self.contract.attention_layer, self.contract.attention_size, cfg.loss.au_lambda,
                len(self.train_set), self.steps_per_epoch, self.device,
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
                    val = self.validate()
                    record = {"epoch": self.epoch, "step": self.step,
                              "lr": self.optimizer.param_groups[0]["lr"],
                              **{f"train_{k}": v for k, v in train_stats.items()},
                              **{f"val_{k}": v for k, v in val.items() if k != "per_class_recall"}}
                    self.history.append(record)
                    improved = not self.best or val["accuracy"] > self.best["val_accuracy"]
                    if improved:
                        self.best = {"epoch": self.epoch, "val_accuracy": val["accuracy"],
                                     "val_macro_f1": val["macro_f1"], "val_att_cos": val["att_cos"]}
                    metrics = {"val": val, "train": train_stats, "best": self.best}
                    self.contract = make_contract(cfg, self.model, self.data, {
                        "accuracy": val["accuracy"], "macro_f1": val["macro_f1"], "att_cos": val["att_cos"],
                        "epoch": self.epoch})
                    self._save("last.pt", metrics)
                    if improved:
                        self._save("best.pt", metrics, full=False)
                    with open(self.run_dir / "history.jsonl", "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(record) + "\n")
                    if self.writer is not None:
                        for k in ("accuracy", "macro_f1", "loss", "att_cos"):
                            self.writer.add_scalar(f"val/{k}", val[k], self.epoch)
                        self.writer.add_scalar("train/images_per_s", train_stats["images_per_s"], self.epoch)
                        self.writer.flush()
                    log.info(
                        "epoch %d/%d: train loss %.4f acc %.4f att_cos %.3f (%.0f img/s, %.0fs) | "
                        "val acc %.4f macro-F1 %.4f att_cos %.3f%s",
                        self.epoch, cfg.optim.epochs, train_stats["loss"], train_stats["acc"],
                        train_stats["att_cos"], train_stats["images_per_s"], train_stats["seconds"],
                        val["accuracy"], val["macro_f1"], val["att_cos"], " (best)" if improved else "",
                    )
                    summary = metrics
                barrier(self.info)
                if cfg.run.stop_after_steps and self.steps_this_run >= cfg.run.stop_after_steps \
                        and self.epoch < cfg.optim.epochs:
                    raise StopRequested
        except StopRequested:
            log.info("stopped after %d steps (run.stop_after_steps) at epoch %d, step %d; continue with --resume",
                     self.steps_this_run, self.epoch, self.step)
            summary = {"stopped": True, "epoch": self.epoch, "step": self.step, "best": self.best}
        finally:
            if self.writer is not None:
                self.writer.close()
            if getattr(self, "_log_handler", None) is not None:
                logging.getLogger().removeHandler(self._log_handler)
                self._log_handler.close()
            if self.info.enabled and dist.is_initialized():
                dist.destroy_process_group()
        return summary
