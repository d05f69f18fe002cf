"""The encoder backend `auto` picks per CPU: exact fp32 unless a CPU kind is listed as agreeing in 8-bit."""

from __future__ import annotations

import ingest.cpu as cpu
from ingest.cpu import choose_backend, cpu_info, parse_cpuinfo
from ingest.embed import Embedder

AVX2_EPYC = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx avx2 fma f16c bmi2
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx avx2 fma f16c bmi2
"""
VNNI = AVX2_EPYC.replace("bmi2", "bmi2 avx512f avx512bw avx512_vnni").replace("7B13", "9B14")
AMX = AVX2_EPYC.replace("bmi2", "bmi2 amx_tile amx_int8 amx_bf16").replace("AMD EPYC 7B13", "Intel Xeon 8480")


def test_every_cpu_gets_fp32_unless_its_kind_was_shown_to_agree_in_8_bit(monkeypatch):
    avx2 = parse_cpuinfo(AVX2_EPYC)
    assert avx2.model == "AMD EPYC 7B13" and avx2.cores == 2 and "avx2" in avx2.flags
    assert not avx2.eight_bit_dot_product and choose_backend(avx2) == "onnx"
    assert parse_cpuinfo(VNNI).eight_bit_dot_product and parse_cpuinfo(AMX).eight_bit_dot_product
    assert choose_backend(parse_cpuinfo(VNNI)) == "onnx" and choose_backend(parse_cpuinfo(AMX)) == "onnx"
    assert "avx512_vnni" in parse_cpuinfo(VNNI).describe()
    monkeypatch.setattr(cpu, "EXACT_EIGHT_BIT_CPUS", ("Intel Xeon 8480",))
    assert choose_backend(parse_cpuinfo(AMX)) == "onnx-q8" and choose_backend(parse_cpuinfo(VNNI)) == "onnx"
    assert choose_backend(avx2) == "onnx"  # no 8-bit instructions: never 8-bit


def test_auto_resolves_to_a_concrete_backend_on_this_machine():
    e = Embedder(backend="auto")
    assert e.backend == choose_backend(cpu_info()) == "onnx"
    assert cpu_info().to_dict()["cores"] >= 1
