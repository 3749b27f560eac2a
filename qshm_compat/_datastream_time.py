"""QDataStream's date and time types: QDate, QTime, QTimeZone and QDateTime.

:class:`QtOffsetZone` (a QTimeZone made from a fixed offset), then each type's read and write
functions side by side (the ``Reader.read_<name>`` / ``Writer.write_<name>`` methods), registered
in the codec's table at the end.  Facts: Qt's ``qdatetime.cpp`` and ``qtimezone.cpp`` (every
stream version's QDateTime layout), checked against PyQt5, PyQt6 and PySide6.
"""

from __future__ import annotations

import datetime as _dt
import zoneinfo
from typing import TYPE_CHECKING, Any

from ._datastream_base import Codec, Qt_5_0, Qt_5_1, Qt_5_2, TypeId, _corrupt, register
from .exceptions import DataStreamError

if TYPE_CHECKING:
    from ._datastream_stream import Reader, Writer

_NULL_JD = -(1 << 63)        # QDate::nullJd()
_NULL_TIME = 0xFFFFFFFF      # QTime's null msecs
_MS_PER_DAY = 86_400_000
_JD_OF_ORDINAL_0 = 1_721_425  # Julian day of date.fromordinal(1) is 1_721_426
_MIN_JD = _JD_OF_ORDINAL_0 + 1
_MAX_JD = _JD_OF_ORDINAL_0 + _dt.date.max.toordinal()
_INVALID_ZONE_ID = "-No Time Zone Specified!"  # what Qt writes for an invalid QTimeZone
_OFFSET_ZONE_TAG = "OffsetFromUtc"             # what Qt writes before a UTC-offset QTimeZone


class QtOffsetZone(_dt.tzinfo):
    """A QTimeZone made from a fixed UTC offset, as Qt 6 streams it (also ``QTimeZone::utc()``).

    Qt writes such a zone as the string ``"OffsetFromUtc"`` followed by its id, offset, name,
    abbreviation, territory and comment; this tzinfo keeps all of them so the bytes round-trip.
    """

    __slots__ = ("id", "offset", "name", "abbreviation", "territory", "comment")

    def __init__(self, id: str, offset: int, name: str | None = None,
                 abbreviation: str | None = None, territory: int = 0,
                 comment: str | None = None) -> None:
        if not -86400 < offset < 86400:
            raise ValueError(f"UTC offset {offset} s is outside a day")
        self.id = id
        self.offset = offset
        self.name = name
        self.abbreviation = abbreviation
        self.territory = territory
        self.comment = comment

    def _key(self) -> tuple[Any, ...]:
        return (self.id, self.offset, self.name, self.abbreviation, self.territory, self.comment)

    def utcoffset(self, dt: _dt.datetime | None) -> _dt.timedelta:
        return _dt.timedelta(seconds=self.offset)

    def dst(self, dt: _dt.datetime | None) -> _dt.timedelta:
        return _dt.timedelta(0)

    def tzname(self, dt: _dt.datetime | None) -> str:
        return self.abbreviation or self.id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QtOffsetZone) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "QtOffsetZone(" + ", ".join(repr(v) for v in self._key()) + ")"

    def __reduce__(self) -> tuple[Any, ...]:
        return (QtOffsetZone, self._key())


# --------------------------------------------------------------------------------------------
# Read and write


def read_qdate(self: Reader) -> _dt.date | None:
    """QDataStream::operator>>(QDate&): a qint64 Julian day; ``None`` for a null date."""
    pos = self._pos
    (jd,) = self._unpack(self._s.i64, "QDate")
    return _date_from_jd(jd, pos)


def write_qdate(self: Writer, value: _dt.date | None) -> None:
    """QDataStream::operator<<(QDate): a qint64 Julian day; ``None`` writes a null date."""
    if isinstance(value, _dt.datetime):
        raise TypeError("QDate needs a datetime.date, not a datetime.datetime")
    self._buf += self._s.i64.pack(_jd(value))


def read_qtime(self: Reader) -> _dt.time | None:
    """QDataStream::operator>>(QTime&): quint32 msecs; ``None`` for null or invalid."""
    (ms,) = self._unpack(self._s.u32, "QTime")
    return _time_from_ms(ms)


def write_qtime(self: Writer, value: _dt.time | None) -> None:
    """QDataStream::operator<<(QTime): msecs since midnight (microseconds are dropped)."""
    self._buf += self._s.u32.pack(_ms(value))


def _date_from_jd(jd: int, pos: int) -> _dt.date | None:
    if jd == _NULL_JD:
        return None
    if not _MIN_JD <= jd <= _MAX_JD:
        raise _corrupt("QDate", pos, f"Julian day {jd} is outside what datetime.date holds "
                       "(years 1 to 9999)")
    return _dt.date.fromordinal(jd - _JD_OF_ORDINAL_0)


def _jd(value: _dt.date | None) -> int:
    if value is None:
        return _NULL_JD
    if not isinstance(value, _dt.date):
        raise TypeError(f"QDate needs a datetime.date, not {type(value).__name__}")
    return value.toordinal() + _JD_OF_ORDINAL_0


def _time_from_ms(ms: int) -> _dt.time | None:
    if ms >= _MS_PER_DAY:  # null (0xFFFFFFFF) or invalid
        return None
    s, milli = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return _dt.time(h, m, s, milli * 1000)


def _ms(value: _dt.time | None) -> int:
    if value is None:
        return _NULL_TIME
    if not isinstance(value, _dt.time):
        raise TypeError(f"QTime needs a datetime.time, not {type(value).__name__}")
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000


def read_qtimezone(self: Reader) -> _dt.tzinfo | None:
    """QDataStream::operator>>(QTimeZone&): a ZoneInfo, a QtOffsetZone, or None (invalid)."""
    pos = self._pos
    zone_id = self.read_qstring()
    if zone_id == _OFFSET_ZONE_TAG:
        zid = self.read_qstring() or ""
        offset = self.read_int32()
        name = self.read_qstring()
        abbreviation = self.read_qstring()
        territory = self.read_int32()
        comment = self.read_qstring()
        try:
            return QtOffsetZone(zid, offset, name, abbreviation, territory, comment)
        except ValueError as exc:
            raise _corrupt("QTimeZone", pos, str(exc)) from None
    if zone_id is None or zone_id == _INVALID_ZONE_ID:
        return None
    try:
        return zoneinfo.ZoneInfo(zone_id)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise _corrupt("QTimeZone", pos, f"unknown time zone id {zone_id!r} ({exc})") from None


def write_qtimezone(self: Writer, zone: _dt.tzinfo | None) -> None:
    """QDataStream::operator<<(QTimeZone): an IANA id, or Qt's UTC-offset form."""
    if zone is None:
        self.write_qstring(_INVALID_ZONE_ID)
    elif isinstance(zone, QtOffsetZone):
        self.write_qstring(_OFFSET_ZONE_TAG)
        self.write_qstring(zone.id)
        self.write_int32(zone.offset)
        self.write_qstring(zone.name)
        self.write_qstring(zone.abbreviation)
        self.write_int32(zone.territory)
        self.write_qstring(zone.comment)
    elif isinstance(zone, zoneinfo.ZoneInfo) and zone.key:
        self.write_qstring(zone.key)
    else:
        raise TypeError(f"QTimeZone needs a zoneinfo.ZoneInfo with a key or a QtOffsetZone, "
                        f"not {zone!r}")


def read_qdatetime(self: Reader) -> _dt.datetime | None:
    """QDataStream::operator>>(QDateTime&): an aware or naive datetime; None if invalid.

    Qt_5_2 and later: date, time, time spec and the offset or zone.  Qt_5_0 stored the UTC
    time and the spec (UTC, offset and zone come back in UTC, as Qt 6 reads them); Qt_5_1
    stored the wall time with Qt 4's spec codes (-1/0/1 local, 2 UTC, 3 offset, 4 zone).
    """
    pos = self._pos
    jd, ms, spec = self._unpack(self._s.datetime_head, "QDateTime")
    version = self.version
    tz: _dt.tzinfo | None
    if version >= Qt_5_2:
        if spec == 0:
            tz = None
        elif spec == 1:
            tz = _dt.timezone.utc
        elif spec == 2:
            offset = self.read_int32()
            if not -86400 < offset < 86400:
                raise _corrupt("QDateTime", pos, f"UTC offset {offset} s is outside a day")
            tz = _dt.timezone(_dt.timedelta(seconds=offset))
        elif spec == 3:
            tz = self.read_qtimezone()
            if tz is None:
                return None  # Qt: a datetime in an invalid zone is invalid
        else:
            # Qt 5 reads an unknown spec as UTC and Qt 6 as local time: call it corrupt.
            raise _corrupt("QDateTime", pos, f"unknown time spec {spec}")
    elif version == Qt_5_1:
        if spec in (-1, 0, 1, 4):
            tz = None
        elif spec in (2, 3):  # Qt reads an offset as UTC with the same wall time
            tz = _dt.timezone.utc
        else:
            raise _corrupt("QDateTime", pos, f"unknown Qt 4 time spec {spec}")
    else:
        if not 0 <= spec <= 3:
            raise _corrupt("QDateTime", pos, f"unknown time spec {spec}")
        tz = _dt.timezone.utc
    date = _date_from_jd(jd, pos)
    if date is None:
        return None
    time = _time_from_ms(ms) or _dt.time()  # Qt treats a null or invalid time as midnight
    value = _dt.datetime.combine(date, time, tz)
    if version == Qt_5_0 and spec == 0:
        try:
            value = value.astimezone().replace(tzinfo=None)
        except (OverflowError, ValueError, OSError) as exc:
            raise _corrupt("QDateTime", pos, f"cannot convert to local time: {exc}") from None
    return value


def write_qdatetime(self: Writer, value: _dt.datetime | None) -> None:
    """QDataStream::operator<<(QDateTime); ``None`` writes an invalid QDateTime.

    The time spec follows the tzinfo: none is local time, ``timezone.utc`` UTC, another
    ``datetime.timezone`` an offset from UTC (whole seconds), a ``ZoneInfo`` or
    :class:`QtOffsetZone` a time zone.  Qt_5_0 streams store the UTC time (naive values are
    converted with this machine's local zone, as Qt does); Qt_5_1 streams Qt 4 spec codes.
    """
    if value is not None and not isinstance(value, _dt.datetime):
        raise TypeError(f"QDateTime needs a datetime.datetime, not {type(value).__name__}")
    tz = None if value is None else value.tzinfo
    if tz is None:
        spec = 0
    elif tz is _dt.timezone.utc:
        spec = 1
    elif isinstance(tz, _dt.timezone):
        spec = 2
    elif isinstance(tz, (zoneinfo.ZoneInfo, QtOffsetZone)):
        spec = 3
    else:
        raise TypeError(f"QDateTime: cannot stream tzinfo {tz!r}; use datetime.timezone, "
                        "zoneinfo.ZoneInfo or QtOffsetZone")
    version = self.version
    if value is None:
        self._buf += self._s.datetime_head.pack(_NULL_JD, _NULL_TIME,
                                                -1 if version == Qt_5_1 else 0)
        return
    if version == Qt_5_0:
        try:
            utc = value.astimezone(_dt.timezone.utc)
        except (OverflowError, ValueError, OSError) as exc:
            raise DataStreamError(f"QDateTime: cannot convert {value} to UTC: {exc}") from None
        self._buf += self._s.datetime_head.pack(_jd(utc.date()), _ms(utc.time()), spec)
        return
    if version == Qt_5_1:
        qt4_spec = (-1, 2, 3, 4)[spec]
        self._buf += self._s.datetime_head.pack(_jd(value.date()), _ms(value.time()),
                                                qt4_spec)
        return
    self._buf += self._s.datetime_head.pack(_jd(value.date()), _ms(value.time()), spec)
    if spec == 2:
        offset = value.utcoffset()
        assert offset is not None
        if offset.microseconds:
            raise DataStreamError(f"QDateTime: UTC offset {offset} is not whole seconds")
        self.write_int32(offset.days * 86400 + offset.seconds)
    elif spec == 3:
        self.write_qtimezone(tz)


register(
    Codec("qdate", (TypeId.QDate,), read_qdate, write_qdate),
    Codec("qtime", (TypeId.QTime,), read_qtime, write_qtime),
    Codec("qtimezone", (), read_qtimezone, write_qtimezone),
    Codec("qdatetime", (TypeId.QDateTime,), read_qdatetime, write_qdatetime),
)
