"""`edgefer bench trainstep`: training-step throughput of candidate backbones at several input sizes.

One full step each time (forward, CE + AU alignment loss, backward, SGD update) on random data at
the recipe's batch size. Candidates are measured round-robin (A B C A B C ...) and the median of the
rounds is kept, so a burst of load from other processes on a shared CPU hits all of them alike; the
figures that matter are the ratios to the first candidate, printed side by side. Besides wall-clock
images/s it prints images per CPU-second (process time over all threads), which is less sensitive to
other processes competing for the cores, and the minutes one FER2013 epoch (25,838 training images
after the 10% validation carve) would take at the measured wall-clock rate.

`--variants` measures the numeric options of the same model side by side: `fp32` (plain),
`bf16` (CPU autocast to bfloat16, what `run.amp=auto` picks on a CPU with AVX512-BF16/AMX), and
`-cl` for channels-last (NHWC) memory layout (`run.channels_last`), `-compile` for `torch.compile`
of the model (`run.compile`; compilation happens in the untimed warm-up). The first variant is the
reference of the ratio column, so `--variants fp32,bf16,bf16-cl` prints each option against fp32.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

#: Named backbone presets: timm name and extra `timm.create_model` keyword arguments.
VARIANTS = ("fp32", "bf16", "fp32-cl", "bf16-cl", "fp32-cl-compile", "bf16-cl-compile", "fp32-compile")

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
    parser.add_argument("--models", default="resnet18_half",
                        help=f"comma-separated presets ({', '.join(PRESETS)}) or timm names")
    parser.add_argument("--sizes", default="56", help="comma-separated input sizes (px)")
    parser.add_argument("--variants", default="",
                        help=f"comma-separated numeric options ({', '.join(VARIANTS)}); the first is the reference. "
                             "Default: all four on a CPU with native bf16, else fp32,fp32-cl (emulated bf16 is "
                             "an order of magnitude slower; ask for it explicitly to see)")
    parser.add_argument("--output-stride", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
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
    from train.precision import cpu_has_native_bf16

    native_bf16 = cpu_has_native_bf16()
    default = "fp32,bf16,fp32-cl,bf16-cl" if native_bf16 else "fp32,fp32-cl"
    variants = [v.strip() for v in (args.variants or default).split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {', '.join(unknown)} (choose from {', '.join(VARIANTS)})")
    loss_fn = AUGuidedLoss(au_lambda=1.0)
    cases = []
    for name in models:
        backbone, kwargs = PRESETS.get(name, (name, {}))
        for size in sizes:
            for variant in variants:
                torch.manual_seed(0)
                spec = ModelSpec(backbone, in_chans=args.in_chans, output_stride=args.output_stride,
                                 backbone_kwargs=kwargs)
                model = build_model(spec)
                gflops = forward_gflops(model, args.in_chans, size)
                att_size = model.attention_size(size)
                x = torch.randn(args.batch, args.in_chans, size, size)
                if "-cl" in variant:
                    model = model.to(memory_format=torch.channels_last)
                    x = x.contiguous(memory_format=torch.channels_last)
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
                if variant.endswith("-compile"):
                    # an OptimizedModule, which runs and trains like the model; torch types it as a function
                    model = torch.compile(model)  # type: ignore[assignment]
                y = torch.randint(0, 7, (args.batch,))
                maps = torch.rand(args.batch, size, size)
                valid = torch.ones(args.batch, dtype=torch.bool)
                params = sum(p.numel() for p in model.parameters())
                cases.append({"name": name, "size": size, "variant": variant, "model": model, "opt": opt,
                              "data": (x, y, maps, valid), "att": att_size, "params": params, "wall": [],
                              "cpu": [], "gflops": gflops, "bf16": variant.startswith("bf16")})

    def step(case: dict) -> None:
        x, y, maps, valid = case["data"]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=case["bf16"]):
            logits, att = case["model"](x)
        terms = loss_fn(logits, att, y, maps, valid)
        case["opt"].zero_grad(set_to_none=True)
        terms.total.backward()
        case["opt"].step()

    for case in cases:  # warm-up (allocator, oneDNN primitives, torch.compile's compilation)
        case["model"].train()
        step(case)
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
          f"{args.rounds} rounds x {args.steps} steps (median); CPU native bf16 (AVX512-BF16/AMX): "
          f"{'yes' if native_bf16 else 'no, so run.amp=auto trains in fp32 here'}")
    print(f"{'model':24s} {'size':>5s} {'variant':>15s} {'att':>7s} {'params':>8s} {'GFLOPs':>7s} {'img/s':>8s} "
          f"{'img/cpu-s':>10s} {'x first':>8s} {'x ' + variants[0]:>9s} {'min/epoch':>10s}")
    ref = None
    group_ref: dict[tuple[str, int], float] = {}
    for case in cases:
        wall = statistics.median(case["wall"])
        cpu = statistics.median(case["cpu"])
        ref = ref or cpu
        base = group_ref.setdefault((case["name"], case["size"]), wall)
        att = "x".join(str(v) for v in case["att"])
        print(f"{case['name']:24s} {case['size']:5d} {case['variant']:>15s} {att:>7s} {case['params'] / 1e6:7.2f}M "
              f"{case['gflops']:7.3f} "
              f"{wall:8.1f} {cpu:10.1f} "
              f"{cpu / ref:8.2f} {wall / base:9.2f} {FER2013_TRAIN / wall / 60:10.1f}")
    print("GFLOPs: forward, one image. 'x first': images per CPU-second relative to the first row "
          "(with --threads 1 CPU time excludes spin-waiting). "
          f"'x {variants[0]}': wall-clock images/s relative to the same model and size with {variants[0]}. "
          "min/epoch: FER2013 train split at the wall-clock rate")
    return 0
