"""ANSI/NIST-ITL traditional encoding: transaction bytes <-> records of fields, nothing interpreted.

A transaction is a Type-1 record followed by the records its CNT field (1.003) lists, in
that order.  Two kinds of record:

- *tagged* records (Types 1, 2, 9, 10, 13-17, 20 ...): ``T.NNN:value`` fields separated by
  GS (0x1D), the record closed by FS (0x1C).  Field 1 is LEN, the record's byte count; field
  2 is IDC for every type but 1.  A value splits into subfields at RS (0x1E) and items at US
  (0x1F).  Field 999 holds binary data (an image) up to the closing FS.  Tags are read with
  any number of digits (``1.01:`` of the 1990s versions, ``1.001:`` later, ``9.126:``).
- *binary* records (Types 3-8): a 4-byte big-endian LEN, a 1-byte IDC, then fixed fields
  and data; nothing in them says their type, so the reader follows CNT.

Reading never allocates from a declared length before checking it against the bytes present,
walks each byte a bounded number of times (no search runs past its record), and caps the
input size (:data:`MAX_TRANSACTION_BYTES`), the records (:data:`MAX_RECORDS`) and the total
count of fields, subfields and items (:data:`MAX_ITEMS`, which bounds the memory of the text).
Malformed input raises :class:`~matcher.errors.TransactionError`; oddities a reader can live
with (a CNT count that disagrees with its list, trailing padding) become warnings.

Why not the registry's ``nistitl`` (IDEMIA, 0.6): it parses all 48 reference files here,
Type-4 included, but (measured 2026-12-06) it slices the rest of the buffer for every record,
so 20,000 empty Type-2 records in a 460 kB file took 139 s; damaged files raise TypeError and
ValueError as well as its own exception; it keeps Type-3..8 records as undivided bytes
(their headers need a parser anyway) and decodes all text as Latin-1.  The format is small
enough that a bounded parser of our own costs less than wrapping those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import TransactionError, TransactionTooLargeError

FS, GS, RS, US = b"\x1c", b"\x1d", b"\x1e", b"\x1f"
_SEPARATORS = frozenset(b"\x1c\x1d\x1e\x1f")
#: Largest transaction read or written, bytes.
MAX_TRANSACTION_BYTES = 256 * 1024 * 1024
#: Most records after Type-1 (CNT entries).
MAX_RECORDS = 1000
#: Most fields + subfields + items in the text of one transaction (bounds memory: each costs
#: a Python object; a ten-print with full Type-9 minutiae and ridge counts has ~100,000).
MAX_ITEMS = 500_000
#: Field number of the binary data field of tagged records.
DATA_TAG = 999
#: Record types that are binary (fixed-layout) records.
BINARY_TYPES = frozenset({3, 4, 5, 6, 7, 8})
#: Tagged record types whose field 999 is text, not data (none in the standard; Type-1, -2
#: and -9 have no data field, so a 999 there is read as text).
_TEXT_ONLY_TYPES = frozenset({1, 2, 9})
_MAX_TAG_CHARS = 16  # "99.123456789:" is 13


def is_digits(text: str) -> bool:
    """Whether ``text`` is ASCII digits only (``str.isdigit`` also takes '²', which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


@dataclass(frozen=True)
class Field:
    """One text field of a tagged record: its number and its subfields of items.

    ``Field(11, (("19.69",),))`` is ``1.011:19.69``; a field of one subfield of one item
    is the common case, read with :attr:`value`.
    """

    tag: int
    subfields: tuple[tuple[str, ...], ...]

    @property
    def value(self) -> str:
        """The first item of the first subfield ('' when empty)."""
        return self.subfields[0][0] if self.subfields and self.subfields[0] else ""

    @property
    def items(self) -> tuple[str, ...]:
        """The first subfield's items."""
        return self.subfields[0] if self.subfields else ()

    @classmethod
    def of(cls, tag: int, value: str | int | Sequence) -> "Field":
        """A field from a value, a list of items (one subfield), or a list of lists of items.

        ``Field.of(5, "20260101")``, ``Field.of(13, ["LOCARD", "1"])``,
        ``Field.of(3, [["1", "2"], ["2", "00"]])``.
        """
        if isinstance(value, (str, int)):
            return cls(tag, ((str(value),),))
        rows = list(value)
        if rows and all(isinstance(r, (str, int)) for r in rows):
            return cls(tag, (tuple(str(v) for v in rows),))
        return cls(tag, tuple(tuple(str(v) for v in r) for r in rows))


@dataclass(frozen=True)
class TaggedRecord:
    """A tagged record: its type, its text fields in file order (LEN left out: the writer
    computes it) and the bytes of its data field 999 (``None`` when it has none)."""

    type: int
    fields: tuple[Field, ...]
    data: bytes | None = None

    def get(self, tag: int) -> Field | None:
        """The first field with this number, or ``None``."""
        return next((f for f in self.fields if f.tag == tag), None)

    def text(self, tag: int) -> str | None:
        """The first item of field ``tag``, or ``None`` when the field is absent."""
        f = self.get(tag)
        return None if f is None else f.value

    @property
    def idc(self) -> int | None:
        """Information designation character (field 2), or ``None`` when absent or not a number."""
        v = self.text(2)
        return int(v) if v is not None and is_digits(v.strip()) else None


@dataclass(frozen=True)
class BinaryRecord:
    """A binary record (Types 3-8): type (from CNT), IDC and the bytes after LEN and IDC."""

    type: int
    idc: int
    body: bytes


Record = TaggedRecord | BinaryRecord


# ---------------------------------------------------------------------- reading


class _Budget:
    def __init__(self, limit: int):
        self.left = limit

    def spend(self, n: int, where: str) -> None:
        self.left -= n
        if self.left < 0:
            raise TransactionTooLargeError(
                f"{where}: the transaction's text has more than {MAX_ITEMS} fields, subfields and items")


def _parse_tag(data: bytes, pos: int, end: int, where: str) -> tuple[int, int, int]:
    """``T.NNN:`` at ``pos`` -> (record type, field number, position after the colon)."""
    colon = data.find(b":", pos, min(end, pos + _MAX_TAG_CHARS))
    if colon < 0:
        raise TransactionError(f"{where}: expected a field tag like '14.011:' at byte {pos}, "
                               f"found {data[pos:pos + 12]!r}")
    head = data[pos:colon]
    rtype, dot, num = head.partition(b".")
    if not dot or not rtype.isdigit() or not num.isdigit():
        raise TransactionError(f"{where}: field tag {head[:20]!r} at byte {pos} is not numeric 'type.field'")
    return int(rtype), int(num), colon + 1


def _split(value: bytes, tag: int, encoding: str, budget: _Budget, where: str) -> Field:
    budget.spend(1 + value.count(RS) + value.count(US), where)
    text = value.decode(encoding, errors="replace")
    return Field(tag, tuple(tuple(sf.split("\x1f")) for sf in text.split("\x1e")))


def _repeated_data_tag(data: bytes, vpos: int, end: int, rtype: int) -> bool:
    """Whether the field 999 at ``vpos`` is a short text value followed by a second field 999.

    NBIS's conformance files (valid1.x) carry such a pair, ``10.999:010110<GS>10.999:<JPEG>``;
    the data is the last one.  Only a value of at most 32 separator-free bytes qualifies.
    """
    gs = data.find(GS, vpos, min(end, vpos + 33))
    if gs < 0 or any(b in _SEPARATORS for b in data[vpos:gs]):
        return False
    return data.startswith(f"{rtype}.{DATA_TAG}:".encode(), gs + 1)


def _read_tagged(data: bytes, off: int, expected_type: int, encoding: str, budget: _Budget,
                 index: int) -> tuple[TaggedRecord, int]:
    """Parse the tagged record at ``off``; return it and its length."""
    where = f"record {index} (Type-{expected_type}) at byte {off}"
    rtype, num, pos = _parse_tag(data, off, len(data), where)
    if rtype != expected_type:
        raise TransactionError(f"{where}: starts with a Type-{rtype} tag, CNT lists Type-{expected_type}")
    if num != 1:
        raise TransactionError(f"{where}: the first field must be LEN ({rtype}.001), found {rtype}.{num:03d}")
    stop = pos
    while stop < len(data) and stop - pos <= 10 and data[stop] not in _SEPARATORS:
        stop += 1
    digits = data[pos:stop]
    if not digits.isdigit() or stop >= len(data) or data[stop] not in (0x1C, 0x1D):
        raise TransactionError(f"{where}: LEN {digits[:12]!r} is not a number followed by a separator")
    length = int(digits)
    if length < stop - off + 1:
        raise TransactionError(f"{where}: LEN {length} is shorter than the LEN field itself")
    if off + length > len(data):
        raise TransactionError(f"{where}: LEN says {length} bytes, only {len(data) - off} remain (truncated?)")
    end = off + length - 1  # index of the record's closing FS
    if data[end] != 0x1C:
        raise TransactionError(f"{where}: byte {end}, the last of its LEN {length}, is {data[end]:#04x}, not FS")
    if data[stop] == 0x1C and stop != end:
        raise TransactionError(f"{where}: FS at byte {stop} after LEN, {end - stop} bytes before the record's end")
    fields: list[Field] = []
    payload: bytes | None = None
    pos = stop + 1
    budget.spend(1, where)
    while pos < end:
        rt, tag, vpos = _parse_tag(data, pos, end, where)
        if rt != rtype:
            raise TransactionError(f"{where}: field {rt}.{tag:03d} at byte {pos} belongs to another record type")
        if tag == DATA_TAG and rtype not in _TEXT_ONLY_TYPES and not _repeated_data_tag(data, vpos, end, rtype):
            payload = data[vpos:end]  # the data field runs to the closing FS, separators and all
            break
        stop = data.find(GS, vpos, end)
        stop = end if stop < 0 else stop
        fs = data.find(FS, vpos, stop)
        if fs >= 0:
            raise TransactionError(f"{where}: FS at byte {fs} inside field {rtype}.{tag:03d}, before the record's end")
        fields.append(_split(data[vpos:stop], tag, encoding, budget, where))
        pos = stop + 1
    return TaggedRecord(rtype, tuple(fields), payload), length


def _read_binary(data: bytes, off: int, rtype: int, index: int) -> tuple[BinaryRecord, int]:
    where = f"record {index} (Type-{rtype}, binary) at byte {off}"
    if off + 5 > len(data):
        raise TransactionError(f"{where}: {len(data) - off} bytes left, a binary record needs at least 5")
    length = int.from_bytes(data[off:off + 4], "big")
    if length < 5:
        raise TransactionError(f"{where}: LEN {length} is shorter than its LEN and IDC bytes")
    if off + length > len(data):
        raise TransactionError(f"{where}: LEN says {length} bytes, only {len(data) - off} remain (truncated?)")
    return BinaryRecord(rtype, data[off + 4], data[off + 5:off + length]), length


def character_encoding(type1: TaggedRecord) -> str:
    """Python codec for the text of records 2 and up: UTF-8 when 1.015 DCS says so, else Latin-1
    (a superset of the 7-bit ASCII default that never fails, so every byte is kept)."""
    dcs = type1.get(15)
    if dcs is None:
        return "latin-1"
    code = dcs.items[0].strip() if dcs.items else ""
    name = dcs.items[1].strip().upper() if len(dcs.items) > 1 else ""
    return "utf-8" if code.lstrip("0") == "3" or name in ("UTF-8", "UTF8") else "latin-1"


def _contents(type1: TaggedRecord) -> tuple[list[tuple[int, int]], list[str]]:
    """CNT (1.003) -> [(type, idc)] of the records after Type-1, and warnings."""
    cnt = type1.get(3)
    if cnt is None or not cnt.subfields:
        raise TransactionError("Type-1 has no CNT field (1.003): the records cannot be told apart")
    warnings: list[str] = []
    head, listed = cnt.subfields[0], cnt.subfields[1:]
    if len(head) < 2 or head[0].strip() != "1" or not is_digits(head[1].strip()):
        raise TransactionError(f"CNT (1.003) must start with '1<US>count', found {list(head)[:3]}")
    if len(listed) > MAX_RECORDS:
        raise TransactionTooLargeError(f"CNT lists {len(listed)} records; the limit is {MAX_RECORDS}")
    if int(head[1]) != len(listed):
        warnings.append(f"CNT says {int(head[1])} records and lists {len(listed)}; the list is followed")
    out = []
    for k, sf in enumerate(listed, 1):
        if len(sf) < 2 or not is_digits(sf[0].strip()) or not is_digits(sf[1].strip()):
            raise TransactionError(f"CNT (1.003) entry {k} is {list(sf)[:3]}, not '<type><US><IDC>'")
        out.append((int(sf[0]), int(sf[1])))
    return out, warnings


def decode_transaction(data: bytes) -> tuple[TaggedRecord, list[Record], list[str]]:
    """Split transaction bytes into the Type-1 record, the other records in order, and warnings.

    Raises
    ------
    TransactionError
        Not a transaction, truncated, wrong lengths or separators, non-numeric tags, CNT
        entries that disagree with the records found, bytes after the last record.
    TransactionTooLargeError
        Input, record count or text item count beyond the limits.
    """
    data = bytes(data)
    if not data:
        raise TransactionError("empty input: 0 bytes")
    if len(data) > MAX_TRANSACTION_BYTES:
        raise TransactionTooLargeError(f"transaction is {len(data)} bytes; the limit is {MAX_TRANSACTION_BYTES}")
    if not data.startswith(b"1."):
        raise TransactionError(f"not an ANSI/NIST-ITL transaction: it must start with '1.', not {data[:8]!r}")
    budget = _Budget(MAX_ITEMS)
    type1, off = _read_tagged(data, 0, 1, "latin-1", budget, 1)
    encoding = character_encoding(type1)
    listed, warnings = _contents(type1)
    records: list[Record] = []
    for k, (rtype, idc) in enumerate(listed, 2):
        if off >= len(data):
            raise TransactionError(f"CNT lists {len(listed)} records after Type-1; the data ends after {k - 2}")
        if rtype in BINARY_TYPES and not data.startswith(f"{rtype}.".encode(), off):
            rec, n = _read_binary(data, off, rtype, k)
            if rec.idc != idc:
                warnings.append(f"record {k} (Type-{rtype}) has IDC {rec.idc}, CNT says {idc}")
        else:
            rec, n = _read_tagged(data, off, rtype, encoding, budget, k)
            if rtype in BINARY_TYPES:
                warnings.append(f"record {k}: Type-{rtype} is a binary type but is written tagged; read as tagged")
            if rec.idc is not None and rtype != 2 and rec.idc != idc:
                warnings.append(f"record {k} (Type-{rtype}) has IDC {rec.idc}, CNT says {idc}")
        records.append(rec)
        off += n
    if off < len(data):
        rest = data[off:]
        if rest.strip(b"\x00\x1c\r\n\t ") == b"":
            warnings.append(f"{len(rest)} padding bytes after the last record ignored")
        else:
            raise TransactionError(f"{len(rest)} bytes after the last of the {len(listed)} records CNT lists "
                                   f"(at byte {off}: {rest[:8]!r}); a record length is wrong")
    return type1, records, warnings


# ---------------------------------------------------------------------- writing


def _check_text(s: str, where: str) -> None:
    if any(c in "\x1c\x1d\x1e\x1f" for c in s):
        raise TransactionError(f"{where}: a value may not contain the separators FS, GS, RS or US: {s!r}")


def encode_tagged(record: TaggedRecord, encoding: str = "ascii") -> bytes:
    """Bytes of a tagged record: LEN first (computed), the fields in ascending tag order, the
    data field (999) last; 3-digit field numbers (ANSI/NIST-ITL 1-2000 and later).

    Raises
    ------
    TransactionError
        A field 1 or 999 among ``fields``, repeated tags, separators inside a value, or text
        the encoding cannot represent.
    """
    where = f"Type-{record.type} record"
    tags = [f.tag for f in record.fields]
    if len(set(tags)) != len(tags) or any(t in (1, DATA_TAG) or t <= 0 for t in tags):
        raise TransactionError(f"{where}: field numbers must be unique, positive, and not 1 (LEN) or 999 (data)")
    parts = []
    for f in sorted(record.fields, key=lambda f: f.tag):
        for sf in f.subfields:
            for item in sf:
                _check_text(item, f"{where}, field {record.type}.{f.tag:03d}")
        text = "\x1e".join("\x1f".join(sf) for sf in f.subfields)
        try:
            value = text.encode(encoding)
        except UnicodeEncodeError:
            raise TransactionError(f"{where}, field {record.type}.{f.tag:03d}: {text!r} is not {encoding}") from None
        parts.append(f"{record.type}.{f.tag:03d}:".encode() + value)
    if record.data is not None:
        parts.append(f"{record.type}.{DATA_TAG}:".encode() + record.data)
    rest = b"".join(GS + p for p in parts) + FS
    head = f"{record.type}.001:".encode()
    length = len(head) + len(rest)
    length += len(str(length))
    if len(head) + len(str(length)) + len(rest) != length:  # one more digit carried
        length += 1
    return head + str(length).encode() + rest


def encode_binary(record: BinaryRecord) -> bytes:
    """Bytes of a binary record: 4-byte LEN, IDC, body."""
    length = 5 + len(record.body)
    if not 0 <= record.idc <= 255 or length >= 1 << 32:
        raise TransactionError(f"Type-{record.type} binary record: IDC {record.idc} or length {length} out of range")
    return length.to_bytes(4, "big") + bytes([record.idc]) + record.body


def encode_transaction(type1_fields: Iterable[Field], records: Sequence[Record], idcs: Sequence[int],
                       encoding: str = "ascii") -> bytes:
    """Bytes of a transaction: Type-1 (``type1_fields`` plus the CNT this computes) and ``records``.

    Parameters
    ----------
    type1_fields : Fields of Type-1 without LEN (1.001) and CNT (1.003).
    records : The records after Type-1, in order.
    idcs : IDC of each record, as CNT lists them.
    encoding : Codec of the text of records 2 and up (``"ascii"``, or ``"utf-8"`` with 1.015 DCS).
    """
    if len(records) != len(idcs):
        raise TransactionError("one IDC per record is needed for CNT")
    if len(records) > MAX_RECORDS:
        raise TransactionTooLargeError(f"{len(records)} records; the limit is {MAX_RECORDS}")
    cnt = Field(3, (("1", str(len(records))),) + tuple((str(r.type), f"{i:02d}") for r, i in zip(records, idcs)))
    t1 = TaggedRecord(1, tuple(f for f in type1_fields if f.tag != 3) + (cnt,))
    out = [encode_tagged(t1, "ascii")]
    for r in records:
        out.append(encode_binary(r) if isinstance(r, BinaryRecord) else encode_tagged(r, encoding))
    data = b"".join(out)
    if len(data) > MAX_TRANSACTION_BYTES:
        raise TransactionTooLargeError(f"transaction would be {len(data)} bytes; the limit is {MAX_TRANSACTION_BYTES}")
    return data
