# setuptools cannot read cffi_modules from setup.cfg (it is silently ignored), so this one line
# lives here; all other metadata is in setup.cfg.
from setuptools import Extension, setup

setup(
    cffi_modules=["native/build_native.py:ffibuilder"],
    # The lock's fast path (native/qshm_fast.c): Python's limited API, so the wheel stays abi3.
    ext_modules=[Extension("qshm_compat._fast", ["native/qshm_fast.c"], py_limited_api=True)],
)
