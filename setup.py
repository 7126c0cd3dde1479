"""Build script: compiles the Cython kernels in ``neurenix/_ext``.

Kernels are built with -O3 and OpenMP (thread count controlled at run time through
``neurenix.set_num_threads``).  Flags that would change floating-point results
(``-ffast-math``) are deliberately not used: the fast kernels must agree with the
generic Array-API implementation and resume bit-for-bit.
"""
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

compile_args = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
# The kernels are compiled on the machine that installs the package, so by default they
# use its full instruction set (AVX2/AVX-512 where present).  Set NEURENIX_MARCH to
# another -march value (or to "" for the compiler's baseline) to build portable binaries.
# -ffp-contract=off keeps results identical whatever the vector width: every element
# goes through the same IEEE operations as the scalar (generic) implementation.
_march = os.environ.get("NEURENIX_MARCH", "native")
if _march:
    compile_args.append(f"-march={_march}")
link_args = []
if sys.platform.startswith("linux") or os.environ.get("NEURENIX_OPENMP") == "1":
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]

ext_names = [
    "neurenix._ext._first_order",
    "neurenix._ext._linesearch",
    "neurenix._ext._evaluator",
    "neurenix._ext._status",
    "neurenix._ext._lbfgs",
    "neurenix._ext._krylov",
    "neurenix._ext._lsq",
]
extensions = [
    Extension(
        name,
        [name.replace(".", "/") + ".pyx"],
        include_dirs=[np.get_include()],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        define_macros=macros,
    )
    for name in ext_names
    if os.path.exists(name.replace(".", "/") + ".pyx")
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "nonecheck": False,
        },
    ),
)
