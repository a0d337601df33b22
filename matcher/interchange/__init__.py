"""Interchange formats: bytes of the standards bureaus exchange, to and from locard's own types.

ANSI/NIST-ITL transactions (traditional encoding; modules ``ansi_nist*``)
--------------------------------------------------------------------------
Reading::

    from matcher.interchange import read_transaction
    tx = read_transaction(data)                # bytes -> Transaction; TransactionError if malformed
    for fp in tx.fingerprints():               # Type-4 and Type-14 exemplars (FingerprintImage)
        fp.finger        # 0-10 for a one-finger image (plain thumbs 11/12 -> 1/6), None for slaps
        fp.position      # FGP code as written (13/14 four-finger slaps, 15 thumbs, 19 EJI/tip)
        fp.impression    # IMP code
        fp.pixels        # (H, W) uint8 gray at fp.ppi, or None with fp.error saying why
        fp.ppi           # pixels per inch of the stored image (500.0 for 19.69 px/mm, 197 px/cm)
        fp.data, fp.compression   # the encoded image as in the record (WSQ20, JPEGB, JPEGL, JP2, JP2L, PNG, NONE)
    tx.latents(); tx.palms(); tx.legacy_prints()   # Type-13, Type-15, Types 3/5/6 (FingerprintImage)
    tx.faces()           # Type-10 with IMT FACE (PhotoImage: pixels (H, W, 3) BGR); tx.photos() all Type-10
    tx.minutiae()        # Type-9 (MinutiaeRecord: .incits378 FingerView, .standard, .fields, .to_minutiae())
    tx.minutiae_for(fp); tx.image_for(minutiae_record)   # linked by IDC
    tx.metadata()        # Type-2 fields {"2.018": "SMITH, TOM", "2.030": [["a", "b"], ["c"]]}
    tx.subject_id        # 2.003 when the domain (1.013) is LOCARD, else None
    tx.info              # Type-1 (TransactionInfo: TOT, TCN, TCR, ORI, DAI, NSR/NTR as ppi, CNT ...)
    tx.problems()        # one line per image or Type-9 block that could not be read, then warnings
    tx.records           # every record in file order; UnreadRecord for Types 7, 8, 16, 17 ... (kept)

``read_transaction(data, decode_images=False)`` skips decoding (``pixels`` stay ``None``).
Errors: :class:`~matcher.errors.TransactionError` (structure) and its subclass
:class:`~matcher.errors.TransactionTooLargeError` (over 256 MiB, 1000 records, 500,000 text
items); an image that cannot be decoded is a message on its record, never an exception.

Writing::

    from matcher.interchange import (write_subject_transaction, FingerprintSample, FaceSample,
                                     write_search_response, SearchCandidate, read_search_response)
    data = write_subject_transaction("subject-42",
        [FingerprintSample(position=2, pixels=gray_500ppi, impression=0, template=t)],  # or wsq=bytes
        [FaceSample(pixels=bgr)],                                # or data=JPEG/PNG bytes
        metadata={18: "SMITH, TOM"}, originating_agency="FR0001", tcn=None, when=None)
    data = write_search_response([SearchCandidate(subject, score, log10_fmr, hit), ...],
                                 request_tcn=tx.info.control_number, threshold_log10_fmr=3.0)
    read_search_response(read_transaction(data))   # -> the candidates again

Type-2 fields of domain LOCARD and the Type-9 block used: :mod:`.ansi_nist_writer`,
:mod:`.ansi_nist_minutiae`.
"""

# Finger minutiae records (ISO/IEC 19794-2, ANSI/INCITS 378; API in .iso19794's docstring), loaded on
# first use: they import the fingerprint matcher (numba, OpenCV, ~3 s), which ANSI/NIST-ITL parsing
# does not need.
_MINUTIAE_RECORDS = {
    "read_template": ".iso19794", "read_iso19794_2": ".iso19794", "write_iso19794_2": ".iso19794",
    "detect_edition": ".iso19794", "read_ansi378": ".ansi378", "write_ansi378": ".ansi378",
    "FingerView": ".finger_view", "Edition": ".record_codec", "MinutiaeRecordError": ".record_codec",
    "RecordVersionError": ".record_codec",
}
# ANSI/NIST-ITL transactions (API above), loaded on first use for the same reason.
_TRANSACTIONS = {
    "read_transaction": ".ansi_nist", "Transaction": ".ansi_nist_records", "TransactionInfo": ".ansi_nist_records",
    "DescriptiveText": ".ansi_nist_records", "FingerprintImage": ".ansi_nist_records",
    "PhotoImage": ".ansi_nist_records", "UnreadRecord": ".ansi_nist_records", "MinutiaeRecord": ".ansi_nist_minutiae",
    "write_subject_transaction": ".ansi_nist_writer", "write_search_response": ".ansi_nist_writer",
    "read_search_response": ".ansi_nist_writer", "FingerprintSample": ".ansi_nist_writer",
    "FaceSample": ".ansi_nist_writer", "SearchCandidate": ".ansi_nist_writer",
}


def __getattr__(name: str):
    module = _MINUTIAE_RECORDS.get(name) or _TRANSACTIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
