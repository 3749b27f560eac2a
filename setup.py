# setuptools cannot read cffi_modules from setup.cfg (it is silently ignored), so this one line
# lives here; all other metadata is in setup.cfg.
import sys

from setuptools import Extension, setup

# The codec's C inner loops: Python's limited API (3.11+, for the buffer protocol), so one abi3
# build serves every later Python.  Older Pythons use the pure-Python codec.
CODEC = [Extension("qshm_compat._codec", ["native/qshm_codec.c"], py_limited_api=True)]

setup(cffi_modules=["native/build_native.py:ffibuilder"],
      ext_modules=CODEC if sys.version_info >= (3, 11) else [])
