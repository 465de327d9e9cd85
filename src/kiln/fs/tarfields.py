"""The fields of a tar header and of PAX records, decoded exactly as ``tarfile`` decodes them.

Why apart from ``tarreader``: these are pure functions of bytes (checksums, NUL-terminated
strings, octal and base-256 numbers, PAX records); the reader is the stream and its states.
"""

from __future__ import annotations

import re
import tarfile
import zlib

BLOCK = 512
ENCODING = tarfile.ENCODING  # what tarfile decodes names with (the filesystem encoding)
ERRORS = "surrogateescape"  # names that are not valid UTF-8 round-trip to the same bytes

_LOW_BYTES = bytes(range(128))
_EVEN_BYTES = bytes(range(0, 256, 2))
_HALVES = bytes(value // 2 for value in range(256))
_HDRCHARSET = re.compile(rb"\d+ hdrcharset=([^\n]+)\n")
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
_PAX_NAME_FIELDS = frozenset(("path", "linkpath", "uname", "gname"))


class BadHeader(Exception):
    """A header tarfile would reject (``InvalidHeaderError`` and friends)."""


def unsigned_sum(data: bytes) -> int:
    """``sum(data)`` for a header, about three times faster.

    Halving every byte keeps the sum below adler32's modulus, so adler32 computes it exactly;
    the odd bytes' lost halves are counted separately.
    """
    halves = zlib.adler32(data.translate(_HALVES)) - 1 & 0xFFFF
    return 2 * halves + len(data.translate(None, _EVEN_BYTES))


def signed_sum(data: bytes) -> int:
    """The sum of ``data`` read as signed chars."""
    return sum(data) - 256 * len(data.translate(None, _LOW_BYTES))


def nts(field: bytes, encoding: str) -> str:
    """tarfile's ``nts``: the bytes up to the first NUL, decoded."""
    end = field.find(0)
    if end != -1:
        field = field[:end]
    return field.decode(encoding, ERRORS)


def nti(field: bytes) -> int:
    """tarfile's ``nti``: an octal number, or base-256 when the first byte says so."""
    if field[0] in (0o200, 0o377):
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0o377:
            value = -(256 ** (len(field) - 1) - value)
        return value
    end = field.find(0)
    if end != -1:
        field = field[:end]
    try:
        return int(field.decode("ascii").strip() or "0", 8)
    except ValueError:
        raise BadHeader("invalid header") from None


def _decode(raw: bytes, encoding: str, fallback: str) -> str:
    """tarfile's ``_decode_pax_field``: strict first, then ``fallback`` with surrogate escapes."""
    try:
        return raw.decode(encoding, "strict")
    except UnicodeDecodeError:
        return raw.decode(fallback, ERRORS)


def parse_pax(data: bytes, records: dict[str, str]) -> None:
    """Add the ``LEN KEY=VALUE\\n`` records of a PAX header to ``records``, as tarfile does."""
    match = _HDRCHARSET.search(data)
    if match is not None:
        records["hdrcharset"] = match.group(1).decode("utf-8")
    encoding = ENCODING if records.get("hdrcharset") == "BINARY" else "utf-8"
    pos = 0
    while True:
        match = _PAX_RECORD.match(data, pos)
        if match is None:
            break
        length = int(match.group(1))
        if length == 0:
            raise BadHeader("invalid header")
        value = data[match.end(2) + 1 : match.start(1) + length - 1]
        keyword = _decode(match.group(2), "utf-8", "utf-8")
        if keyword in _PAX_NAME_FIELDS:
            records[keyword] = _decode(value, encoding, ENCODING)
        else:
            records[keyword] = _decode(value, "utf-8", "utf-8")
        pos += length


def pax_int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


def blocks(count: int) -> int:
    """``count`` rounded up to whole blocks (tarfile's ``_block``; negative sizes give 0)."""
    blocks, remainder = divmod(count, BLOCK)
    if remainder:
        blocks += 1
    return blocks * BLOCK
