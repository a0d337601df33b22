"""Typed errors raised by the matchers.

Every error a caller can provoke with bad input derives from :class:`LocardError`,
so a service can map all of them to a 4xx answer and never to a traceback.
"""

from __future__ import annotations


class LocardError(Exception):
    """Base of every error locard raises on purpose."""


class ImageError(LocardError, ValueError):
    """The bytes handed over are not a usable image."""


class EmptyImageError(ImageError):
    """Zero bytes were given."""


class UnsupportedFormatError(ImageError):
    """The bytes are not in any image format the matcher reads."""


class CorruptImageError(ImageError):
    """The format was recognised but the image could not be decoded (truncated, damaged)."""


class ImageTooLargeError(ImageError):
    """The image exceeds the byte or pixel-count limit (decompression-bomb guard)."""


class ImageTooSmallError(ImageError):
    """The image is too small to hold a usable biometric sample."""


class TransactionError(LocardError, ValueError):
    """ANSI/NIST-ITL transaction bytes that cannot be read (truncated, wrong lengths or
    separators, non-numeric tags), or values that cannot be written into one."""


class TransactionTooLargeError(TransactionError):
    """The transaction exceeds a byte, record or item-count limit."""


class TemplateError(LocardError, ValueError):
    """Template bytes that cannot be decoded."""


class TemplateVersionError(TemplateError):
    """A template written by a format version this build cannot read."""


class FailureToEnrol(LocardError):
    """The image decoded but holds no usable biometric sample.

    Attributes
    ----------
    quality : int
        Quality score 0-100 of the sample (0 for blank images).
    """

    def __init__(self, message: str, quality: int = 0):
        super().__init__(message)
        self.quality = quality
