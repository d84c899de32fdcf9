"""Which floating-point type the forward pass runs in (`run.amp`): autocast's dtype, or plain fp32.

bf16 only where the hardware computes it natively: on a CPU without AVX512-BF16/AMX (x86) or the
`bf16` feature (Arm), PyTorch emulates bf16 and a step is slower than in fp32, so `auto` stays fp32
there (measured by `edgefer bench trainstep`, docs/training.md).
"""

from __future__ import annotations

from pathlib import Path

import torch


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
