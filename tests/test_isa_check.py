""".ci/check_isa.py: no AVX outside the dispatched ISA units of the compiled extensions.

Runs the check on the extensions this test session imports, and proves it catches the
COMDAT pitfall on a throwaway library: a header template instantiated in an AVX2 unit
and in a generic unit, where the linker keeps the AVX2 copy for both callers.  Needs
x86-64 Linux, binutils and g++ (skips otherwise); skips where .ci/ is not beside tests/
(e.g. the wheel check, which copies tests/ only).
"""
from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, ".ci", "check_isa.py")

pytestmark = [
    pytest.mark.skipif(not os.path.exists(SCRIPT), reason=".ci/check_isa.py not beside tests/"),
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or sys.platform != "linux",
                       reason="x86-64 Linux only"),
]


def _need(*tools):
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found")


def _run_check(*paths):
    return subprocess.run([sys.executable, SCRIPT, *map(str, paths)], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def check_isa():
    spec = importlib.util.spec_from_file_location("check_isa", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_classifies_instructions(check_isa):
    avx = ["vfmadd231ps %ymm1,%ymm2,%ymm3", "vmovq  %r8,%xmm29", "vxorps %xmm0,%xmm0,%xmm0",
           "vzeroupper", "kmovw  %eax,%k1", "shlx   %rax,%rbx,%rcx",
           "movaps %zmm0,(%rsp)", "vcvtph2ps %xmm0,%xmm1"]
    baseline = ["movaps %xmm0,(%rsp)", "addps  %xmm1,%xmm0", "lock cmpxchg %rdx,(%rdi)",
                "call   1234 <vmovq_helper@plt>", "xgetbv", "verw   (%rax)",
                "jmp    55 <aek::avx2::f()+0x10>", "shl    %cl,%rax"]
    assert [i for i in avx if not check_isa.is_avx(i)] == []
    assert [i for i in baseline if check_isa.is_avx(i)] == []


def test_classifies_functions(check_isa):
    isa = ["aek::avx2::gemm_ukernel_f32_6x16_avx2(long, float const*, float const*, float*, "
           "long, int)",
           "void aek::simd::shift_block<aek::avx512::(anonymous namespace)::F32x16, 6, 4>"
           "(long, aek::avx512::(anonymous namespace)::F32x16::T const*) [clone .constprop.0]",
           "aek_maxrow_fast22_f32.avx2", "aek_maxrow_fast22_f32.avx2.0",
           "foo(int) [clone .avx2]"]
    generic = ["void aek::simd::shift_block<aek::(anonymous namespace)::Lanes4<float>, 3, 2>"
               "(long)",
               "void std::sort<float*>(float*, float*)",
               "aek::register_kernel(aek::avx2::Table*)",   # mentions the ISA only in its
               "aek_maxrow_fast22_f32.default", "aek_maxrow_fast22_f32.resolver"]  # arguments
    assert [f for f in isa if not check_isa.is_isa_function(f)] == []
    assert [f for f in generic if check_isa.is_isa_function(f)] == []


def test_extensions_have_no_avx_outside_isa_units():
    _need("objdump", "readelf")
    try:
        import aekernels._native as native
        import aekernels._pool as pool
    except ImportError:
        pytest.skip("compiled extensions not built")
    proc = _run_check(native.__file__, pool.__file__)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 violations" in proc.stdout


SHARED_HPP = """
    #pragma once
    // A header template both units instantiate.  Unit is a tag that, when it comes
    // from the ISA unit's own namespace, makes the two instantiations different symbols.
    template <class Unit, class T>
    __attribute__((noinline)) void scale_all(T* x, long n, T a) {
        for (long i = 0; i < n; ++i) x[i] *= a;
    }
    struct Shared {};
"""
ISA_CPP = """
    #include "shared.hpp"
    namespace aek::avx2 {
    namespace { struct Here {}; }
    void scale_avx2(float* x, long n, float a) { scale_all<UNIT, float>(x, n, a); }
    }
"""
GENERIC_CPP = """
    #include "shared.hpp"
    void scale_generic(float* x, long n, float a) { scale_all<Shared, float>(x, n, a); }
"""


def _build_library(tmp_path, isa_unit_tag):
    """libdemo.so from an AVX2 unit (linked first, so its COMDAT copies win) and a
    generic unit; the AVX2 unit instantiates scale_all over isa_unit_tag."""
    (tmp_path / "shared.hpp").write_text(textwrap.dedent(SHARED_HPP))
    (tmp_path / "isa.cpp").write_text(textwrap.dedent(ISA_CPP).replace("UNIT", isa_unit_tag))
    (tmp_path / "generic.cpp").write_text(textwrap.dedent(GENERIC_CPP))
    steps = [["g++", "-O3", "-fPIC", "-std=c++17", "-mavx2", "-mfma", "-c", "isa.cpp"],
             ["g++", "-O3", "-fPIC", "-std=c++17", "-c", "generic.cpp"],
             ["g++", "-shared", "isa.o", "generic.o", "-o", "libdemo.so"]]
    for cmd in steps:
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{cmd}: {proc.stderr}"
    return tmp_path / "libdemo.so"


def test_catches_template_merged_from_isa_unit(tmp_path):
    _need("objdump", "readelf", "g++")
    lib = _build_library(tmp_path, "Shared")
    proc = _run_check(lib)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "VIOLATION void scale_all<Shared, float>" in proc.stdout


def test_passes_template_instantiated_over_isa_type(tmp_path):
    _need("objdump", "readelf", "g++")
    lib = _build_library(tmp_path, "Here")
    proc = _run_check(lib)
    assert proc.returncode == 0, proc.stdout + proc.stderr
