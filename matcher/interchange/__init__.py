"""Interchange formats: bytes of the standards bureaus exchange, to and from locard's own types."""

# Finger minutiae records (ISO/IEC 19794-2, ANSI/INCITS 378; API in .iso19794's docstring), loaded on
# first use: they import the fingerprint matcher (numba, OpenCV, ~3 s), which ANSI/NIST-ITL parsing
# does not need.
_MINUTIAE_RECORDS = {
    "read_template": ".iso19794", "read_iso19794_2": ".iso19794", "write_iso19794_2": ".iso19794",
    "detect_edition": ".iso19794", "read_ansi378": ".ansi378", "write_ansi378": ".ansi378",
    "FingerView": ".finger_view", "Edition": ".record_codec", "MinutiaeRecordError": ".record_codec",
    "RecordVersionError": ".record_codec",
}


def __getattr__(name: str):
    module = _MINUTIAE_RECORDS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
