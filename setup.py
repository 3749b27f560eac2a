# setuptools cannot read cffi_modules from setup.cfg (it is silently ignored), so it lives here
# with what depends on the Python building: all other metadata is in setup.cfg.
import sys

from setuptools import Extension, setup

# The codec's C inner loops use the limited API of 3.11 (the buffer protocol); older Pythons use
# the pure-Python codec.  The wheel's abi3 tag is the oldest limited API that its modules need.
CODEC = sys.version_info >= (3, 11)

setup(
    cffi_modules=["native/build_native.py:ffibuilder"],
    ext_modules=[Extension("qshm_compat._codec", ["native/qshm_codec.c"], py_limited_api=True)] if CODEC else [],
    options={"bdist_wheel": {"py_limited_api": "cp311" if CODEC else "cp39"}},
)
