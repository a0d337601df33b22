"""Image preparation shared by the peer adapters."""

from __future__ import annotations

import cv2
import numpy as np

from matcher.imageio import decode_image

#: Resolution the peers' matchers are tuned for (NBIS, SourceAFIS, LEADER, MCC).
PEER_PPI = 500.0


def gray_at_500ppi(data: bytes, ppi: float) -> np.ndarray:
    """Decode ``data`` to gray ``uint8`` and resample it from ``ppi`` to 500 ppi.

    Every peer's matcher measures distances in pixels tuned for 500 ppi (Bozorth3's
    tolerances, MCC's cylinder radius, SourceAFIS's edge lengths), and not all of
    them take a resolution argument, so the image itself is resampled (area
    interpolation when shrinking, cubic when enlarging), the same way for all.
    """
    gray = decode_image(data).pixels
    if ppi <= 0:
        raise ValueError(f"ppi must be positive, got {ppi}")
    scale = PEER_PPI / float(ppi)
    if abs(scale - 1.0) < 1e-3:
        return gray
    h, w = gray.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def png_bytes(gray: np.ndarray) -> bytes:
    """Lossless PNG encoding of a gray image (for peers that take encoded bytes)."""
    ok, buf = cv2.imencode(".png", gray)
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 array
        raise ValueError("PNG encoding failed")
    return buf.tobytes()
