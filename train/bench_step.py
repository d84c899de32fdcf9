"""`edgefer bench trainstep`: training-step throughput of candidate backbones at several input sizes.

One full step each time (forward, CE + AU alignment loss, backward, SGD update) on random data at
the recipe's batch size. Candidates are measured round-robin (A B C A B C ...) and the median of the
rounds is kept, so a burst of load from other processes on a shared CPU hits all of them alike; the
figures that matter are the ratios to the first candidate, printed side by side. Besides wall-clock
images/s it prints images per CPU-second (process time over all threads), which is less sensitive to
other processes competing for the cores, and the minutes one FER2013 epoch (25,838 training images
after the 10% validation carve) would take at the measured wall-clock rate.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

#: Named backbone presets: timm name and extra `timm.create_model` keyword arguments.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet18": ("resnet18", {}),
    "resnet18_half": ("resnet18", {"channels": [32, 64, 128, 256], "stem_width": 32}),
    "resnet18_quarter": ("resnet18", {"channels": [16, 32, 64, 128], "stem_width": 16}),
    "resnet10t": ("resnet10t", {}),
    "resnet10t_half": ("resnet10t", {"channels": [32, 64, 128, 256], "stem_width": 16}),
    "mobilenetv3_large_100": ("mobilenetv3_large_100", {}),
    "mobilenetv3_small_100": ("mobilenetv3_small_100", {}),
}
FER2013_TRAIN = 25838


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default="resnet18_half,resnet18,resnet10t,resnet18_quarter",
                        help=f"comma-separated presets ({', '.join(PRESETS)}) or timm names")
    parser.add_argument("--sizes", default="48,64,96", help="comma-separated input sizes (px)")
    parser.add_argument("--output-stride", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=2, help="round-robin repetitions (median kept)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--in-chans", type=int, default=1)


def forward_gflops(model, in_chans: int, size: int) -> float:
    """Forward GFLOPs of one image (torch's FLOP counter): a machine-independent cost figure."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, in_chans, size, size))
    model.train()
    return counter.get_total_flops() / 1e9


def run(args: argparse.Namespace) -> int:
    import torch

    from train.losses import AUGuidedLoss
    from train.model import ModelSpec, build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    loss_fn = AUGuidedLoss(au_lambda=1.0)
    cases = []
    for name in models:
        backbone, kwargs = PRESETS.get(name, (name, {}))
        for size in sizes:
            spec = ModelSpec(backbone, in_chans=args.in_chans, output_stride=args.output_stride, backbone_kwargs=kwargs)
            model = build_model(spec)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
            x = torch.randn(args.batch, args.in_chans, size, size)
            y = torch.randint(0, 7, (args.batch,))
            maps = torch.rand(args.batch, size, size)
            valid = torch.ones(args.batch, dtype=torch.bool)
            params = sum(p.numel() for p in model.parameters())
            cases.append({"name": name, "size": size, "model": model, "opt": opt, "data": (x, y, maps, valid),
                          "att": model.attention_size(size), "params": params, "wall": [], "cpu": [],
                          "gflops": forward_gflops(model, args.in_chans, size)})

    def step(case: dict) -> None:
        x, y, maps, valid = case["data"]
        logits, att = case["model"](x)
        terms = loss_fn(logits, att, y, maps, valid)
        case["opt"].zero_grad(set_to_none=True)
        terms.total.backward()
        case["opt"].step()

    for case in cases:  # warm-up (allocator, oneDNN primitives)
        case["model"].train()
        step(case)
    for _ in range(args.rounds):
        for case in cases:
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                step(case)
            n = args.steps * args.batch
            case["wall"].append(n / (time.perf_counter() - w0))
            case["cpu"].append(n / max(1e-9, time.process_time() - c0))

    print(f"training step, batch {args.batch}, output stride {args.output_stride}, torch threads {torch.get_num_threads()}, "
          f"{args.rounds} rounds x {args.steps} steps (median)")
    print(f"{'model':24s} {'size':>5s} {'att':>7s} {'params':>8s} {'GFLOPs':>7s} {'img/s':>8s} {'img/cpu-s':>10s} "
          f"{'x first':>8s} {'min/epoch':>10s}")
    ref = None
    for case in cases:
        wall = statistics.median(case["wall"])
        cpu = statistics.median(case["cpu"])
        ref = ref or cpu
        att = "x".join(str(v) for v in case["att"])
        print(f"{case['name']:24s} {case['size']:5d} {att:>7s} {case['params'] / 1e6:7.2f}M {case['gflops']:7.3f} "
              f"{wall:8.1f} {cpu:10.1f} "
              f"{cpu / ref:8.2f} {FER2013_TRAIN / wall / 60:10.1f}")
    print("GFLOPs: forward, one image. 'x first': images per CPU-second relative to the first row "
          "(with --threads 1 CPU time excludes spin-waiting). min/epoch: FER2013 train split at the wall-clock rate")
    return 0
