"""The one compiled part of posttrain: dedup's ASCII normalizer (``csrc/fastnorm.c``).

Everything else is configured in ``pyproject.toml``. The extension is optional: where no
C compiler is available the install goes on, and dedup runs its numpy path instead
(same results, about twice the CPU time).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "posttrain.platform.dedup._fastnorm",
            sources=["csrc/fastnorm.c"],
            depends=["csrc/xxhash.h"],
            include_dirs=["csrc"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
