"""Build the compiled modules from .pyx (generated C++ is never committed).

Compiler directives live here and only here. ORDERBOOK_DEBUG=1 builds with bounds checks and
without optimisation, for running the tests against a checked build.
"""

import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("ORDERBOOK_DEBUG") == "1"

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

compile_args = ["-std=c++17", "-O0" if DEBUG else "-O3", "-g0" if not DEBUG else "-g"]

extensions = [
    Extension(
        f"orderbook.{name}",
        [f"orderbook/{name}.pyx"],
        language="c++",
        include_dirs=[numpy.get_include()],
        extra_compile_args=compile_args,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name in ("book", "accounts", "engine")
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives, annotate=False))
