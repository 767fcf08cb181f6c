"""Build the two compiled extensions of aekernels.

* ``aekernels._native``: C++17 conv kernels (pybind11) from csrc/.
* ``aekernels._pool``: Cython pooling/unpooling kernels from aekernels/_pool.pyx.

Portable by construction: no ``-march=native``.  C++ sources named ``*_avx2.cpp`` or
``*_avx512.cpp`` are compiled with that ISA enabled and are only *called* after a
CPUID check at run time; everything else is baseline x86-64 (or whatever the target is).
"""
import glob
import os
import sys

import numpy
from Cython.Build import cythonize
from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ISA_FLAGS = {
    "_avx2.cpp": ["-mavx2", "-mfma", "-mf16c"],
    "_avx512.cpp": ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq",
                    "-mavx2", "-mfma", "-mf16c"],
}
IS_X86 = any(m in (os.uname().machine if hasattr(os, "uname") else "x86_64")
             for m in ("x86_64", "AMD64", "i686"))
OPENMP = ["-fopenmp"] if sys.platform != "darwin" else []
SANITIZE = os.environ.get("AEKERNELS_SANITIZE", "")  # e.g. "address,undefined" (tools/)
SAN_FLAGS = ([f"-fsanitize={SANITIZE}", "-fno-sanitize-recover=all",
              "-fno-omit-frame-pointer", "-g"] if SANITIZE else [])
OPT = ["-O0"] if SANITIZE else ["-O3"]


def _isa_flags(source):
    for suffix, flags in ISA_FLAGS.items():
        if source.endswith(suffix):
            return flags
    return None


class BuildExt(build_ext):
    """build_ext that compiles ISA-specific C++ sources with their own flags."""

    def build_extension(self, ext):
        special = [s for s in ext.sources if _isa_flags(s) is not None]
        if special:
            ext.sources = [s for s in ext.sources if s not in special]
            if IS_X86:
                objects = []
                for src in special:
                    objects += self.compiler.compile(
                        [src], output_dir=self.build_temp,
                        include_dirs=ext.include_dirs,
                        extra_postargs=ext.extra_compile_args + _isa_flags(src),
                        depends=ext.depends)
                ext.extra_objects = list(ext.extra_objects or []) + objects
                ext.define_macros = list(ext.define_macros or []) + [("AEK_HAVE_X86_ISA", "1")]
        super().build_extension(ext)


class BuildPy(build_py):
    """Ship csrc/aekernels/*.hpp as aekernels/include/aekernels/ (see get_include())."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "aekernels", "include", "aekernels")
        os.makedirs(dest, exist_ok=True)
        for header in glob.glob("csrc/aekernels/*.hpp"):
            self.copy_file(header, os.path.join(dest, os.path.basename(header)))


cpp_sources = sorted(glob.glob("csrc/*.cpp"))
native = Pybind11Extension(
    "aekernels._native",
    sources=cpp_sources,
    include_dirs=["csrc"],
    depends=sorted(glob.glob("csrc/aekernels/*.hpp")),
    cxx_std=17,
    extra_compile_args=OPT + OPENMP + SAN_FLAGS + ["-fvisibility=hidden"],
    extra_link_args=OPENMP + SAN_FLAGS,
)
pool = Extension(
    "aekernels._pool",
    sources=["aekernels/_pool.pyx"],
    include_dirs=[numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=OPT + OPENMP + SAN_FLAGS,
    extra_link_args=OPENMP + SAN_FLAGS,
)

setup(
    ext_modules=[native] + cythonize(
        [pool], language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False}),
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
    package_data={"aekernels": ["*.pxd", "*.pyx"]},
)
