"""Build the optional C kernel of the feature stage; all other metadata is in pyproject.toml.

The kernel (``edgemon/features/_select.c``) computes exact order statistics
several times faster than numpy can.  It is optional: without a C compiler
and the Python headers the build skips it, and edgemon uses its numpy
methods, which give the same results.  Set ``EDGEMON_PURE_PYTHON=1`` to
leave it out on purpose, for example to build one wheel for devices of
another CPU architecture.  An editable install builds the kernel inside the
source tree, where every later editable install finds it; ``make clean``
removes it.
"""

import os

from setuptools import Extension, setup

select = Extension(
    "edgemon.features._select",
    sources=["edgemon/features/_select.c"],
    # No fused multiply-add: the kernel's exactness relies on the rounding
    # of each operation (see the comment at the top of _select.c).
    extra_compile_args=["-O2", "-std=c11", "-ffp-contract=off"],
    optional=True,
)

setup(ext_modules=[] if os.environ.get("EDGEMON_PURE_PYTHON") == "1" else [select])
