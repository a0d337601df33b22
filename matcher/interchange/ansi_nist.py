"""ANSI/NIST-ITL transactions read into typed records (:mod:`.ansi_nist_records`): :func:`read_transaction`.

The byte layer is :mod:`.ansi_nist_encoding`, image decoding :mod:`.ansi_nist_images`, Type-9
:mod:`.ansi_nist_minutiae`.

Resolution: tagged records state it (SLC 1 pixels per inch, 2 pixels per centimetre, 0 none);
binary records by ISR: 0 the minimum scanning resolution (19.69 px/mm = 500 ppi; half for
the low-resolution Types 3 and 5), 1 the transmitting resolution of 1.012 (NTR, else 1.011
NSR).  Values within 1 % of 250, 500, 1000 or 2000 ppi are read as those (197 px/cm is 500
ppi, as the standard means it), so a 500 ppi print is not resampled by 0.08 %.

Images are decoded while reading (``decode_images=False`` skips it); one that cannot be
decoded gets ``pixels=None`` and an ``error`` message, and the rest is read.
"""

from __future__ import annotations

from ..errors import LocardError
from .ansi_nist_encoding import BinaryRecord, TaggedRecord, decode_transaction, is_digits
from .ansi_nist_images import compression_name, decode_pixels
from .ansi_nist_minutiae import read_minutiae_record
from .ansi_nist_records import (DescriptiveText, FingerprintImage, PhotoImage, Transaction, TransactionInfo,
                                TypedRecord, UnreadRecord, snap_ppi)
from .finger_view import ppi_from_ppcm

__all__ = ["read_transaction", "Transaction", "TransactionInfo", "DescriptiveText", "FingerprintImage",
           "PhotoImage", "UnreadRecord", "DECODED_PIXEL_BUDGET"]

#: Decoded pixels one transaction may hold in all (later images get an error instead).
DECODED_PIXEL_BUDGET = 150_000_000
_BINARY_IMAGE_TYPES = frozenset({3, 4, 5, 6})
_TAGGED_RIDGE_TYPES = frozenset({13, 14, 15})


class _PixelBudget:
    def __init__(self, limit: int):
        self.left = limit

    def decode(self, data: bytes, compression: str, w: int, h: int, bpx: int, color: bool):
        if not self.left > 0 or max(w, 0) * max(h, 0) > self.left:
            return None, (f"not decoded: the transaction's images exceed {DECODED_PIXEL_BUDGET} pixels in all")
        try:
            px = decode_pixels(data, compression, w, h, bpx, color=color)
        except LocardError as exc:
            return None, f"{compression} image could not be decoded: {exc}"
        self.left -= px.shape[0] * px.shape[1]
        return px, None


def _int_text(text: str | None, default: int = 0) -> int:
    return int(text) if text is not None and is_digits(text.strip()) else default


def _tagged_ppi(rec: TaggedRecord) -> float | None:
    slc, hps = _int_text(rec.text(8), -1), _int_text(rec.text(9))
    if hps <= 0:
        return None
    if slc == 1:
        return snap_ppi(float(hps))
    if slc == 2:
        return ppi_from_ppcm(hps)
    return None


def _binary_image(rec: BinaryRecord, info: TransactionInfo, budget: _PixelBudget | None) -> FingerprintImage:
    body = rec.body
    if len(body) < 13:
        return FingerprintImage(rec.type, rec.idc, 0, (), 0, 0, 0, None, "NONE", 8, b"",
                                error=f"binary image record of {len(body) + 5} bytes is shorter than its 18-byte header")
    imp, fgp, isr = body[0], body[1:7], body[7]
    w, h, gca = int.from_bytes(body[8:10], "big"), int.from_bytes(body[10:12], "big"), body[12]
    positions = tuple(b for b in fgp if b != 255)
    low_res = rec.type in (3, 5)
    if isr == 0:
        ppi: float | None = 250.0 if low_res else 500.0
    else:
        ppi = info.transmitting_ppi or info.native_ppi
    bpx = 1 if rec.type in (5, 6) else 8
    comp = compression_name(gca) if rec.type == 4 else ("NONE" if gca == 0 else f"CODE {gca}")
    data = body[13:]
    pixels, error = (budget.decode(data, comp, w, h, bpx, False) if budget else (None, None))
    return FingerprintImage(rec.type, rec.idc, positions[0] if positions else 0, positions, imp, w, h, ppi,
                            comp, bpx, data, (), pixels, error)


def _tagged_image(rec: TaggedRecord, budget: _PixelBudget | None) -> FingerprintImage:
    fgp = rec.get(13)
    positions = tuple(int(v) for sf in (fgp.subfields if fgp else ()) for v in sf[:1] if is_digits(v.strip()))
    w, h = _int_text(rec.text(6)), _int_text(rec.text(7))
    comp = compression_name(rec.text(11) or "NONE")
    bpx = _int_text(rec.text(12), 8)
    data = rec.data or b""
    pixels, error = (budget.decode(data, comp, w, h, bpx, False) if budget else (None, None))
    return FingerprintImage(rec.type, rec.idc if rec.idc is not None else -1, positions[0] if positions else 0,
                            positions, _int_text(rec.text(3)), w, h, _tagged_ppi(rec), comp, bpx, data,
                            rec.fields, pixels, error)


def _photo(rec: TaggedRecord, budget: _PixelBudget | None) -> PhotoImage:
    w, h = _int_text(rec.text(6)), _int_text(rec.text(7))
    comp = compression_name(rec.text(11) or "NONE")
    csp = (rec.text(12) or "").strip().upper()
    bpx = 8 if csp == "GRAY" else 24
    data = rec.data or b""
    pixels, error = (budget.decode(data, comp, w, h, bpx, True) if budget else (None, None))
    return PhotoImage(rec.idc if rec.idc is not None else -1, (rec.text(3) or "").strip(), w, h, _tagged_ppi(rec),
                      comp, csp, rec.text(13), data, rec.fields, pixels, error)


def read_transaction(data: bytes, *, decode_images: bool = True) -> Transaction:
    """Read an ANSI/NIST-ITL transaction (traditional encoding).

    Parameters
    ----------
    data : bytes
        The whole transaction (at most
        :data:`~matcher.interchange.ansi_nist_encoding.MAX_TRANSACTION_BYTES`).
    decode_images : bool
        Decode every image (WSQ in a child process each); false leaves ``pixels=None``
        and ``error=None`` (the encoded ``data`` is always there).

    Raises
    ------
    matcher.errors.TransactionError
        Malformed structure (truncated, wrong lengths or separators, non-numeric tags).
    matcher.errors.TransactionTooLargeError
        Beyond the byte, record or item limits.
    """
    type1, raw, warnings = decode_transaction(data)
    info = TransactionInfo.from_record(type1)
    budget = _PixelBudget(DECODED_PIXEL_BUDGET) if decode_images else None
    records: list[TypedRecord] = []
    for rec in raw:
        if isinstance(rec, BinaryRecord):
            records.append(_binary_image(rec, info, budget) if rec.type in _BINARY_IMAGE_TYPES
                           else UnreadRecord(rec.type, rec.idc, rec))
        elif rec.type == 2:
            records.append(DescriptiveText(rec.idc if rec.idc is not None else 0, rec.fields))
        elif rec.type == 9:
            records.append(read_minutiae_record(rec))
        elif rec.type == 10:
            records.append(_photo(rec, budget))
        elif rec.type in _TAGGED_RIDGE_TYPES:
            records.append(_tagged_image(rec, budget))
        else:
            records.append(UnreadRecord(rec.type, rec.idc, rec))
    return Transaction(info, tuple(records), tuple(warnings))
