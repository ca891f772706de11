"""Build the compiled modules from .pyx (generated C++ is never committed).

Compiler directives live here and only here. Two environment switches, for checked builds the
tests run against (.ci/run does both), and one for reading the generated code:

- ORDERBOOK_DEBUG=1: bounds checks, no optimisation, debug symbols.
- ORDERBOOK_SANITIZE=1: AddressSanitizer and UndefinedBehaviorSanitizer, aborting on the first
  report. CPython itself is not instrumented, so the runtime must be preloaded:
  ``LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"``
  with ``ASAN_OPTIONS=detect_leaks=0`` (the interpreter keeps its own objects until exit).
- ORDERBOOK_ANNOTATE=1: write ``cython -a``'s HTML beside each .pyx (orderbook/book.html, ...):
  lines that touch Python are yellow; the inner loops should stay white.

ORDERBOOK_JOBS (default: the number of cores) is how many modules are cythonized and compiled at
once; ``--parallel N`` on the command line overrides it for the compile.
"""

import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("ORDERBOOK_DEBUG") == "1"
SANITIZE = os.environ.get("ORDERBOOK_SANITIZE") == "1"
ANNOTATE = os.environ.get("ORDERBOOK_ANNOTATE") == "1"
# pip and `python -m build` pass no --parallel, so without a default a wheel is built one
# module at a time.
JOBS = int(os.environ.get("ORDERBOOK_JOBS") or os.cpu_count() or 1)

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

compile_args = ["-std=c++17", "-O0" if DEBUG else "-O3", "-g0" if not DEBUG else "-g"]
link_args = []
if SANITIZE:
    sanitizers = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    # -fno-wrapv: CPython builds with -fwrapv, under which signed overflow is defined and so
    # goes unreported.
    compile_args = ["-std=c++17", *sanitizers, "-fno-wrapv", "-O0" if DEBUG else "-O1", "-g",
                    "-fno-omit-frame-pointer"]
    link_args = sanitizers

extensions = [
    Extension(
        f"orderbook.{name}",
        [f"orderbook/{name}.pyx"],
        language="c++",
        include_dirs=[numpy.get_include()],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name in ("book", "_matching", "accounts", "liquidator", "engine", "_layout_facts", "_depth")
]

# force: the HTML is written only when a module is cythonized, so asking for it re-cythonizes.
setup(ext_modules=cythonize(extensions, compiler_directives=directives, annotate=ANNOTATE,
                            force=ANNOTATE, nthreads=JOBS),
      options={"build_ext": {"parallel": JOBS}})
