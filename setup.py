# setuptools cannot read cffi_modules from setup.cfg (it is silently ignored), so this one line
# lives here; all other metadata is in setup.cfg.
from setuptools import setup

setup(cffi_modules=["native/build_native.py:ffibuilder"])
