# setuptools cannot read cffi_modules from setup.cfg (it is silently ignored), so it lives here
# with what depends on the Python building: all other metadata is in setup.cfg.
import sys

from setuptools import Extension, setup

# Both C extensions use only Python's limited API, so the wheel is abi3.  The codec's C inner
# loops need the limited API of 3.11 (the buffer protocol); older Pythons use the pure-Python
# codec.  The wheel's abi3 tag is the oldest limited API that its modules need.
CODEC = sys.version_info >= (3, 11)
LIMITED_API = [("Py_LIMITED_API", "0x030B0000")] if CODEC else []  # else the 3.9 API qshm_fast.c sets
EXTENSIONS = [
    # the lock, attach and detach: sem_* in libpthread and shm_open in librt before glibc 2.34
    Extension("qshm_compat._fast", ["native/qshm_fast.c"], py_limited_api=True, define_macros=LIMITED_API,
              libraries=["rt", "pthread"]),
]
if CODEC:
    EXTENSIONS.append(Extension("qshm_compat._codec", ["native/qshm_codec.c"], py_limited_api=True))

setup(
    cffi_modules=["native/build_native.py:ffibuilder"],
    ext_modules=EXTENSIONS,
    options={"bdist_wheel": {"py_limited_api": "cp311" if CODEC else "cp39"}},
)
