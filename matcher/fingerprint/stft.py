"""Short-time Fourier transform of a fingerprint: the local spectra of overlapping blocks.

Ridges are locally a plane wave, so each block's spectrum concentrates around one
frequency vector: its angle is the ridge normal and its radius the ridge frequency.
:mod:`~matcher.fingerprint.frequency` reads the frequency off these spectra and
:mod:`~matcher.fingerprint.enhancement` filters them (Chikkerur, Cartwright &
Govindaraju, 2007).  Blocks are ``WINDOW`` pixels wide every ``STRIDE`` pixels with a
periodic Hann window, whose shifted copies sum to one, so overlap-adding the
filtered blocks reconstructs the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

WINDOW = 32
STRIDE = WINDOW // 2


@dataclass(frozen=True)
class BlockSpectra:
    """Spectra of overlapping image blocks.

    Block ``(i, j)`` covers padded-image pixels ``[i*STRIDE, i*STRIDE+WINDOW)`` by
    ``[j*STRIDE, ...)``; the padded image is the input shifted by ``STRIDE`` pixels.
    """

    spectra: np.ndarray
    """(by, bx, WINDOW, WINDOW//2+1) complex64, rfft2 of the windowed blocks."""
    shape: tuple[int, int]
    """(H, W) of the original image."""

    @property
    def grid(self) -> tuple[int, int]:
        return self.spectra.shape[:2]

    def block_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column, in original-image pixels, of every block centre (1-D arrays)."""
        by, bx = self.grid
        return (np.arange(by) * STRIDE, np.arange(bx) * STRIDE)


def _hann2d() -> np.ndarray:
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)  # periodic Hann
    return np.outer(w, w).astype(np.float32)


_HANN = _hann2d()
#: Spatial frequency (cycles per pixel) and angle (radians) of every rfft2 bin.
_FY = np.fft.fftfreq(WINDOW)[:, None]
_FX = np.fft.rfftfreq(WINDOW)[None, :]
RADIUS = np.sqrt(_FX ** 2 + _FY ** 2).astype(np.float32)
ANGLE = np.mod(np.arctan2(_FY, _FX), np.pi).astype(np.float32)


def block_spectra(image: np.ndarray) -> BlockSpectra:
    """Windowed spectra of overlapping blocks covering the whole image.

    Parameters
    ----------
    image : (H, W) array, 500 ppi

    Returns
    -------
    BlockSpectra
    """
    img = image.astype(np.float32)
    img = img - img.mean()
    h, w = img.shape
    by = -(-h // STRIDE) + 1
    bx = -(-w // STRIDE) + 1
    padded = np.zeros(((by + 1) * STRIDE, (bx + 1) * STRIDE), np.float32)
    padded[STRIDE:STRIDE + h, STRIDE:STRIDE + w] = img
    blocks = sliding_window_view(padded, (WINDOW, WINDOW))[::STRIDE, ::STRIDE][:by, :bx]
    # scipy's FFT transforms float32 blocks in single precision, in about a quarter of numpy's
    # time; the 480 FVC templates checked (fast: FVC2002 B; default: DB1_B, FVC2000-style) were
    # identical to numpy's
    spectra = scipy.fft.rfft2(blocks * _HANN).astype(np.complex64, copy=False)
    return BlockSpectra(spectra=spectra, shape=(h, w))


def overlap_add(spectra: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`block_spectra`: inverse FFT every block and overlap-add.

    Returns
    -------
    (H, W) float32 image.
    """
    blocks = scipy.fft.irfft2(spectra, s=(WINDOW, WINDOW)).astype(np.float32, copy=False)
    by, bx = blocks.shape[:2]
    out = np.zeros(((by + 1) * STRIDE, (bx + 1) * STRIDE), np.float32)
    for a in (0, 1):
        for b in (0, 1):
            sub = blocks[a::2, b::2]
            ny, nx = sub.shape[:2]
            tiled = sub.transpose(0, 2, 1, 3).reshape(ny * WINDOW, nx * WINDOW)
            out[a * STRIDE:a * STRIDE + ny * WINDOW, b * STRIDE:b * STRIDE + nx * WINDOW] += tiled
    h, w = shape
    return out[STRIDE:STRIDE + h, STRIDE:STRIDE + w]
