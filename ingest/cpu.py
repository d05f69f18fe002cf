"""The CPU this process runs on, and the embedding backend that is exact and fastest on it.

Why not 8-bit by default: 8-bit ONNX kernels take different code paths on different CPUs, so their vectors —
and an answer near the answer/decline line — depend on the CPU. On an AVX2-only AMD EPYC `onnx-q8` was *slower*
than fp32 (evidence check 331 vs 258 ms for 40 sentences) and moved a borderline question across the line that
fp32 and torch kept on the other side (issue 11). On an EPYC with AVX-512 VNNI, where q8 is ~1.6x fp32, it still
answered one of the 279 gold questions (a1_38) that fp32 and torch decline (tests/rag/test_backend_agreement.py).
So `auto` means fp32 ONNX on every CPU measured: exact (the torch vectors to within float rounding) and faster
than torch on both kinds. 8-bit stays available as an explicit choice. The CPU is still read: every index status
and benchmark names it.
"""

from __future__ import annotations

import functools
import platform
import re
from dataclasses import dataclass
from pathlib import Path

EIGHT_BIT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8",
                  "amx_bf16", "amx_tile")


@dataclass(frozen=True)
class CpuInfo:
    """Model name, core count and the instruction-set flags that matter for the encoder's kernels."""

    model: str
    cores: int
    flags: tuple[str, ...]

    @property
    def eight_bit_dot_product(self) -> bool:
        """Whether the CPU has instructions that make 8-bit matrix products fast (VNNI or AMX)."""
        return any(f in self.flags for f in EIGHT_BIT_FLAGS)

    def to_dict(self) -> dict[str, object]:
        """For index status and benchmark JSON."""
        return {"model": self.model, "cores": self.cores, "flags": list(self.flags)}

    def describe(self) -> str:
        """'AMD EPYC, 2 cores, avx2 avx512_vnni'."""
        return f"{self.model}, {self.cores} cores, {' '.join(self.flags) or 'no AVX2'}"


def parse_cpuinfo(text: str, cores: int | None = None) -> CpuInfo:
    """CpuInfo from the text of /proc/cpuinfo."""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags_line = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    flags = set(flags_line.group(1).split()) if flags_line else set()
    count = cores or len(re.findall(r"^processor\s*:", text, re.M)) or 1
    return CpuInfo(model.group(1).strip() if model else (platform.processor() or platform.machine()), count,
                   tuple(f for f in REPORTED_FLAGS if f in flags))


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU (Linux /proc/cpuinfo; elsewhere the platform's name and no flags)."""
    import os

    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"), os.cpu_count())
    except OSError:
        return CpuInfo(platform.processor() or platform.machine(), os.cpu_count() or 1, ())


# CPU kinds on which an 8-bit backend has been shown to give fp32's gold outcomes (none yet; see above). A kind
# is added here only with a passing tests/rag/test_backend_agreement.py run on it.
EXACT_EIGHT_BIT_CPUS: tuple[str, ...] = ()


def choose_backend(info: CpuInfo | None = None) -> str:
    """The embedding backend `auto` means on this CPU: onnx-q8 only on a CPU kind listed as agreeing with fp32,
    fp32 onnx everywhere else."""
    info = info or cpu_info()
    if info.eight_bit_dot_product and any(kind in info.model for kind in EXACT_EIGHT_BIT_CPUS):
        return "onnx-q8"
    return "onnx"
