"""Face templates as versioned bytes.

Layout (little-endian)::

    b"LCFT"                 magic
    u16  format version     (TEMPLATE_FORMAT)
    u8   quality 0-100
    u8   length of the model id, then the model id (UTF-8)
    u16  dimension d
    f32  x d                 L2-normalised embedding

The model id names the embedding model and pipeline version: vectors from
different models live in different spaces and are never compared.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..errors import TemplateError, TemplateVersionError

MAGIC = b"LCFT"
TEMPLATE_FORMAT = 1
_HEAD = struct.Struct("<4sHBB")


@dataclass(frozen=True, eq=False)
class FaceTemplate:
    """What is stored for one face: its embedding, the model that made it, its quality.

    Attributes
    ----------
    model : str
        Embedding model and pipeline version, e.g. ``"sface-2021dec-int8bq+centred0.6/2"``.
    embedding : (d,) float32 array
        Unit length.
    quality : int
        0-100.
    """

    model: str
    embedding: np.ndarray
    quality: int = 0

    def __post_init__(self):
        v = np.ascontiguousarray(self.embedding, dtype=np.float32).ravel()
        v.setflags(write=False)
        object.__setattr__(self, "embedding", v)
        if not 0 <= int(self.quality) <= 100:
            raise ValueError(f"quality must be 0-100, got {self.quality}")

    def __eq__(self, other) -> bool:
        return (isinstance(other, FaceTemplate) and self.model == other.model
                and self.quality == other.quality and np.array_equal(self.embedding, other.embedding))

    def to_bytes(self) -> bytes:
        """Serialise (see the module docstring for the layout)."""
        mid = self.model.encode()
        if len(mid) > 255:
            raise ValueError("model id longer than 255 bytes")
        return (_HEAD.pack(MAGIC, TEMPLATE_FORMAT, int(self.quality), len(mid)) + mid
                + struct.pack("<H", len(self.embedding)) + self.embedding.astype("<f4").tobytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> "FaceTemplate":
        """Parse bytes written by :meth:`to_bytes`.

        Raises
        ------
        TemplateError
            Not a face template, or truncated.
        TemplateVersionError
            Written by a format version this build cannot read.
        """
        data = bytes(data)
        if len(data) < _HEAD.size or data[:4] != MAGIC:
            raise TemplateError("not a locard face template (bad magic)")
        _, version, quality, n = _HEAD.unpack_from(data)
        if version != TEMPLATE_FORMAT:
            raise TemplateVersionError(f"face template format {version}; this build reads {TEMPLATE_FORMAT}")
        off = _HEAD.size
        if len(data) < off + n + 2:
            raise TemplateError("face template is truncated")
        try:
            model = data[off:off + n].decode()
        except UnicodeDecodeError:
            raise TemplateError("face template model id is not UTF-8") from None
        off += n
        (dim,) = struct.unpack_from("<H", data, off)
        off += 2
        if len(data) != off + 4 * dim:
            raise TemplateError(f"face template holds {len(data) - off} embedding bytes, expected {4 * dim}")
        vec = np.frombuffer(data, dtype="<f4", count=dim, offset=off).astype(np.float32)
        if quality > 100:
            raise TemplateError(f"face template quality {quality} is out of range")
        return cls(model=model, embedding=vec, quality=quality)
