"""``qChecksum``: Qt's CRC-16, for programs that put a checked header in their shared memory.

Facts (Qt 5.15 and Qt 6 ``qbytearray.cpp``, ``Qt::ChecksumType`` in ``qnamespace.h``; the values
are checked against PyQt5's and PyQt6's ``QtCore.qChecksum`` in ``tests/test_wsjtx.py``): the
CRC-CCITT polynomial x^16 + x^12 + x^5 + 1 processed bit-reflected (least significant bit
first, reversed polynomial 0x8408), over the bytes in order, result as an unsigned 16-bit int.

* ``Qt::ChecksumIso3309`` (0, the default): initial value 0xFFFF, result complemented (the
  CRC of ISO 3309 / X.25 HDLC frames; ``qChecksum(b"123456789") == 0x906E``).
* ``Qt::ChecksumItuV41`` (1, Qt >= 5.9): initial value 0x6363, result as is (ITU-T V.41 as used
  by ISO/IEC 14443 type A; ``0xBF05`` for ``b"123456789"``).

Qt walks the bytes four bits at a time with a 16-entry table; this module uses a 256-entry
table made at import from the polynomial, which gives the same values.
"""

from __future__ import annotations

import enum
from typing import List, Union

__all__ = ["ChecksumType", "qChecksum"]


class ChecksumType(enum.IntEnum):
    """``Qt::ChecksumType``: Qt's names and values."""

    ChecksumIso3309 = 0
    ChecksumItuV41 = 1


_REVERSED_POLY = 0x8408  # 0x1021, bit-reversed
_INITIAL = {ChecksumType.ChecksumIso3309: 0xFFFF, ChecksumType.ChecksumItuV41: 0x6363}
_FINAL_XOR = {ChecksumType.ChecksumIso3309: 0xFFFF, ChecksumType.ChecksumItuV41: 0x0000}


def _table() -> List[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _REVERSED_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


def qChecksum(data: Union[bytes, bytearray, memoryview],
              standard: Union[ChecksumType, int] = ChecksumType.ChecksumIso3309) -> int:
    """``qChecksum(data, standard)``: Qt's CRC-16 of ``data`` (any bytes-like object), 0..0xFFFF.

    ``qChecksum(data, len)`` of Qt 5 is ``qChecksum(data[:len])`` here.
    """
    kind = ChecksumType(standard)
    crc = _INITIAL[kind]
    table = _TABLE
    for byte in memoryview(data).cast("B"):
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ _FINAL_XOR[kind]
