"""Which process this is, and where it computes: torchrun's process group and the torch device.

Kept apart from the training loop so the loop reads as one epoch after another; these are the few
lines that differ between one CPU, one GPU and several GPUs under torchrun (DDP: nccl on CUDA, gloo
on a CPU). Only rank 0 logs, validates and writes; the others wait at `barrier`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    """This process's place in the run: rank, world size and the GPU index on its machine."""

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
    """Wait for every rank (a no-op in a single process)."""
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group at the end of a run (a no-op in a single process)."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def resolve_device(choice: str, info: DistInfo) -> torch.device:
    """`run.device` (auto, cuda, cpu) as a torch device; under torchrun each rank takes its local GPU."""
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("run.device=cuda but no CUDA device is available (torch.cuda.is_available() is False)")
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")
