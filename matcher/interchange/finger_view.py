"""A finger view of a minutiae record, the model ISO/IEC 19794-2 and ANSI/INCITS 378 share,
and its conversion to and from locard's :class:`~matcher.fingerprint.template.Template`.

The byte layouts live in :mod:`.iso19794` (2005, 2011) and :mod:`.ansi378` (2004, 2009);
both produce and consume :class:`FingerView`, which keeps every field in the standard's own
units (pixels of the record's image, angle codes, quality codes), so a record read and
written again in its edition comes back byte for byte.  Conversion to locard happens in
:meth:`FingerView.to_minutiae` / :meth:`FingerView.to_template` and back in
:meth:`FingerView.from_template`.

Units and conventions
---------------------
- Positions: pixels of the record's image, origin top left, y downwards, at the record's
  resolution (pixels per centimetre; 197 px/cm is read as exactly 500 ppi, as the
  standards intend).  locard's are pixels at 500 ppi.
- Angles: ISO codes count 360/256 degrees, ANSI codes 2 degrees (0-179), both
  counter-clockwise on screen from the x axis.  locard's direction is measured from the
  x axis towards the image's y axis (clockwise on screen), so ``direction = -angle``.  The
  sign and the absence of a half turn were checked on real data: on the 320 images of the
  FVC2002 B sets, 81 % of SecuGen's minutiae (its ISO templates shipped with the sets) have
  one of locard's own within 10 px and 20 degrees with the negated angle, 8 % with the
  angle as-is, 10 % turned by 180 degrees, 2 % negated and turned
  (benchmarks/README.md, "Interoperability (MINEX-style)").
- Minutia type: 1 ridge ending, 2 bifurcation, 0 other (:class:`~matcher.fingerprint.minutiae.MinutiaType`).
- Minutia and finger quality: 0-100; 2009/2011 editions add 254 (not reported) and 255
  (could not be computed), which locard reads as 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from ..fingerprint.minutiae import MINUTIA_DTYPE
from ..fingerprint.resolution import WORKING_PPI
from ..fingerprint.template import Template, block_mask
from .record_codec import (CORE_DELTA_BLOCK, MAX_COORDINATE, RECORD_MINUTIA_DTYPE, RIDGE_COUNT_BLOCK, Edition,
                           ExtendedBlock, MinutiaeRecordError, angle_codes, decode_core_delta, recode_core_delta)

#: Resolutions the standards write in px/cm, by the ppi meant (197 px/cm is 500 ppi).
_ROUND_PPI = (250.0, 300.0, 333.0, 500.0, 600.0, 1000.0, 1200.0, 2000.0)
#: Margin around the minutiae's convex hull taken as print area when a record has no mask,
#: pixels at 500 ppi: Cappelli et al.'s MCC ("ConvHull(T, omega)", omega = 50 px at 500 ppi).
HULL_MARGIN_PX = 50.0


def ppi_from_ppcm(ppcm: int) -> float:
    """Pixels per inch a record's pixels-per-centimetre field stands for (197 -> 500)."""
    for ppi in _ROUND_PPI:
        if round(ppi / 2.54) == ppcm:
            return ppi
    return ppcm * 2.54


def ppcm_from_ppi(ppi: float) -> int:
    """The pixels-per-centimetre field for a resolution in ppi (500 -> 197)."""
    return max(1, round(ppi / 2.54))


@dataclass(frozen=True)
class QualityBlock:
    """A quality score with the vendor (IBIA id) and algorithm that computed it (0: unreported)."""

    score: int
    vendor: int = 0
    algorithm: int = 0


@dataclass(frozen=True)
class CaptureDevice:
    """What the editions record about the capture: each fills its own fields, the rest stay 0.

    ``compliance``, ``device_id``: ISO 2005 / ANSI 2004 capture equipment (4 + 12 bits);
    ``product_owner``, ``product_type``: ANSI's CBEFF product identifier;
    ``certified``: ANSI 2009's sensor certification bit; ``technology``, ``vendor``: ISO 2011's
    device technology and vendor (``device_id`` is its device type, or ANSI 2009's sensor id);
    ``captured_at``: ISO 2011's 9 date/time bytes (all 0xFF: not given); ``certifications``:
    ISO 2011's (authority, scheme) pairs.
    """

    compliance: int = 0
    device_id: int = 0
    product_owner: int = 0
    product_type: int = 0
    certified: bool = False
    technology: int = 0
    vendor: int = 0
    captured_at: bytes = b"\xff" * 9
    certifications: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class SingularPoints:
    """Cores and deltas of a view, in locard's frame (pixels at 500 ppi, radians).

    ``cores``: (n, 3) x, y, direction (NaN when the record gives none);
    ``deltas``: (n, 5) x, y and three directions (NaN when none).
    """

    cores: np.ndarray
    deltas: np.ndarray


@dataclass(frozen=True, eq=False)
class FingerView:
    """One finger view (ISO 2011: one finger representation) of a minutiae record.

    Attributes
    ----------
    edition : Edition
        The standard and edition the view was read from or is meant for.
    position : int
        Finger position code (0 unknown, 1 right thumb ... 10 left little, as ANSI/NIST-ITL).
    view : int
        View number (ISO 2011: representation number) among views of one finger.
    impression : int
        Impression type (0 live-scan plain, 1 live-scan rolled, 2 non-live plain, 3 non-live rolled, ...).
    quality : int
        Finger quality 0-100 (2009/2011: 254 not reported, 255 failed).
    width, height : int
        Size of the image the minutiae were found in, record pixels.
    x_resolution, y_resolution : int
        Pixels per centimetre (197 = 500 ppi).
    minutiae : structured array of :data:`RECORD_MINUTIA_DTYPE`
        In the record's units.
    extended : tuple of ExtendedBlock
        Extended data, raw; :meth:`ridge_counts` and :meth:`singular_points` decode two kinds.
    quality_blocks : tuple of QualityBlock
        ISO 2011's quality records, ANSI 2009's one (score, vendor, algorithm); empty otherwise.
    capture : CaptureDevice
    ending_type : int
        ISO 2011: where ridge endings sit (0 valley skeleton bifurcation, 1 ridge skeleton end).
    minutia_quality : bool
        ISO 2011: whether minutiae carry a quality byte (6-byte records) or not (5 bytes).
    """

    edition: Edition
    width: int
    height: int
    minutiae: np.ndarray
    x_resolution: int = 197
    y_resolution: int = 197
    position: int = 0
    view: int = 0
    impression: int = 0
    quality: int = 0
    extended: tuple[ExtendedBlock, ...] = ()
    quality_blocks: tuple[QualityBlock, ...] = ()
    capture: CaptureDevice = field(default_factory=CaptureDevice)
    ending_type: int = 0
    minutia_quality: bool = True

    def __len__(self) -> int:
        return len(self.minutiae)

    @property
    def ppi(self) -> tuple[float, float]:
        """Horizontal and vertical resolution, pixels per inch."""
        return ppi_from_ppcm(self.x_resolution), ppi_from_ppcm(self.y_resolution)

    # ------------------------------------------------------------------ to locard

    def _frame(self, image_size: tuple[int, int] | None, ppi: float | None) -> tuple[float, float, int, int]:
        """Scale from record pixels to locard's 500-ppi pixels on each axis, and the image size there."""
        if image_size is None:
            px, py = self.ppi
            sx, sy = WORKING_PPI / px, WORKING_PPI / py
            return sx, sy, max(1, round(self.width * sx)), max(1, round(self.height * sy))
        w, h = image_size
        if w <= 0 or h <= 0 or self.width <= 0 or self.height <= 0:
            raise ValueError(f"image sizes must be positive: record {self.width}x{self.height}, image {w}x{h}")
        to_500 = WORKING_PPI / (ppi if ppi is not None else self.ppi[0])
        return w / self.width * to_500, h / self.height * to_500, max(1, round(w * to_500)), max(1, round(h * to_500))

    def _directions(self, codes: np.ndarray, sx: float, sy: float) -> np.ndarray:
        """Angle codes -> locard directions (radians), through an axis stretch ``sx``, ``sy``."""
        standard = codes.astype(np.float64) * self.edition.angle_unit
        d = -standard  # counter-clockwise on screen -> locard's x-towards-y
        if not math.isclose(sx, sy, rel_tol=1e-9):
            d = np.arctan2(sy * np.sin(d), sx * np.cos(d))
        return np.mod(d, 2 * np.pi)

    def to_minutiae(self, image_size: tuple[int, int] | None = None, ppi: float | None = None) -> np.ndarray:
        """The minutiae in locard's convention (:data:`~matcher.fingerprint.minutiae.MINUTIA_DTYPE`).

        Parameters
        ----------
        image_size : (width, height), optional
            The image the minutiae were really found in, its own pixels, when the record
            misstates it (for example an extractor handed a resampled image): positions and
            directions are stretched from the record's declared size to this one.
        ppi : float, optional
            That image's resolution (default: the record's).

        Returns
        -------
        Positions in pixels at 500 ppi, directions in radians ``[0, 2 pi)``, quality 0-100.
        """
        sx, sy, _, _ = self._frame(image_size, ppi)
        m = self.minutiae
        out = np.zeros(len(m), MINUTIA_DTYPE)
        out["x"] = m["x"] * sx
        out["y"] = m["y"] * sy
        out["direction"] = self._directions(m["angle"], sx, sy)
        out["type"] = m["type"]
        q = m["quality"]
        out["quality"] = np.where(q <= 100, q, 0)
        return out

    def to_template(self, mask: np.ndarray | None = None, image_size: tuple[int, int] | None = None,
                    ppi: float | None = None, extractor: str = "accurate") -> Template:
        """A locard template of this view, for :func:`matcher.fingerprint.compare`.

        Parameters
        ----------
        mask : (rows, cols) bool, optional
            Print area in :data:`~matcher.fingerprint.template.MASK_BLOCK` cells at 500 ppi.
            A record carries none; by default it is :func:`hull_mask` (the minutiae's convex
            hull plus :data:`HULL_MARGIN_PX`), as MCC does for templates without one.
        image_size, ppi
            As :meth:`to_minutiae`.
        extractor : {"accurate", "fast"}
            Which of locard's calibrations the template's scores are read against.  Neither
            was measured on another vendor's minutiae: thresholds (FMR) are approximate.
        """
        _, _, w, h = self._frame(image_size, ppi)
        minutiae = self.to_minutiae(image_size, ppi)
        if mask is None:
            mask = hull_mask(minutiae["x"], minutiae["y"], w, h)
        q = self.quality if self.quality <= 100 else 0
        return Template(minutiae=minutiae, width=w, height=h, quality=int(q), mask=mask, extractor=extractor)

    # ------------------------------------------------------------------ from locard

    @classmethod
    def from_template(cls, template: Template, edition: Edition, position: int = 0,
                      impression: int = 0, view: int = 0) -> "FingerView":
        """A view holding a locard template's minutiae in ``edition``'s units (500 ppi = 197 px/cm).

        Raises
        ------
        MinutiaeRecordError
            More than 255 minutiae, or positions beyond the 14 bits a record holds.
        """
        m = template.minutiae
        if len(m) > 255:
            raise MinutiaeRecordError(f"a finger view holds at most 255 minutiae, the template has {len(m)}")
        rec = np.zeros(len(m), RECORD_MINUTIA_DTYPE)
        x, y = np.round(m["x"]), np.round(m["y"])
        if len(m) and (x.max() > MAX_COORDINATE or y.max() > MAX_COORDINATE or min(x.min(), y.min()) < 0):
            raise MinutiaeRecordError(f"minutia positions must be 0-{MAX_COORDINATE} pixels")
        rec["x"], rec["y"] = x, y
        rec["angle"] = angle_codes(-m["direction"].astype(np.float64), edition)
        rec["type"] = m["type"]
        rec["quality"] = np.clip(m["quality"], 0, 100)
        q = int(np.clip(template.quality, 0, 100))
        blocks = (QualityBlock(q),) if edition.reports_unknown_quality else ()
        return cls(edition=edition, width=template.width, height=template.height, minutiae=rec,
                   x_resolution=ppcm_from_ppi(WORKING_PPI), y_resolution=ppcm_from_ppi(WORKING_PPI),
                   position=position, view=view, impression=impression, quality=q, quality_blocks=blocks)

    def converted(self, edition: Edition) -> "FingerView":
        """This view in another edition's units: angles re-quantised, quality codes mapped,
        the core/delta block re-encoded for the other standard; other blocks kept as they are."""
        if edition == self.edition:
            return self
        m = self.minutiae.copy()
        m["angle"] = angle_codes(m["angle"].astype(np.float64) * self.edition.angle_unit, edition)
        if not edition.reports_unknown_quality:
            m["quality"] = np.where(m["quality"] <= 100, m["quality"], 0)
        quality = self.quality if self.quality <= 100 or edition.reports_unknown_quality else 0
        blocks = self.quality_blocks
        if edition.reports_unknown_quality and not blocks:
            blocks = (QualityBlock(quality),)
        elif not edition.reports_unknown_quality:
            blocks = ()
        extended = self.extended
        if edition.is_iso != self.edition.is_iso:
            extended = tuple(recode_core_delta(b, self.edition, edition) if b.type == CORE_DELTA_BLOCK else b
                             for b in self.extended)
        return replace(self, edition=edition, minutiae=m, quality=quality, quality_blocks=blocks,
                       extended=extended)

    # ------------------------------------------------------------------ extended data

    def ridge_counts(self) -> tuple[int, np.ndarray] | None:
        """The ridge count block: (extraction method, (n, 3) int array of minutia index a,
        minutia index b, ridges crossed), or None when the view has none.

        Raises
        ------
        MinutiaeRecordError
            A block whose length is not 1 + 3 n bytes.
        """
        block = next((b for b in self.extended if b.type == RIDGE_COUNT_BLOCK), None)
        if block is None:
            return None
        if len(block.data) < 1 or (len(block.data) - 1) % 3:
            raise MinutiaeRecordError(f"ridge count block of {len(block.data)} bytes is not 1 + 3 n")
        counts = np.frombuffer(block.data, np.uint8, offset=1).reshape(-1, 3).astype(np.int64)
        return block.data[0], counts

    def singular_points(self) -> SingularPoints | None:
        """The core and delta block decoded into locard's frame, or None when the view has none.

        Raises
        ------
        MinutiaeRecordError
            A block whose counts run past its bytes, or with bytes left over.
        """
        block = next((b for b in self.extended if b.type == CORE_DELTA_BLOCK), None)
        if block is None:
            return None
        cores, deltas = decode_core_delta(block.data, self.edition)
        sx, sy, _, _ = self._frame(None, None)

        def frame(points: np.ndarray, n_angles: int) -> np.ndarray:
            out = np.full((len(points), 2 + n_angles), np.nan)
            for k, p in enumerate(points):
                out[k, 0], out[k, 1] = p[0] * sx, p[1] * sy
                if p[2] is not None:
                    out[k, 2:] = self._directions(np.asarray(p[2]), sx, sy)
            return out

        return SingularPoints(frame(cores, 1), frame(deltas, 3))


def hull_mask(x: np.ndarray, y: np.ndarray, width: int, height: int,
              margin: float = HULL_MARGIN_PX) -> np.ndarray:
    """Print area of a template without one: the convex hull of its minutiae plus ``margin``.

    Parameters
    ----------
    x, y : arrays
        Minutia positions, pixels at 500 ppi.
    width, height : int
        Image size, pixels at 500 ppi.
    margin : float
        Pixels added around the hull.

    Returns
    -------
    (rows, cols) bool, one cell per :data:`~matcher.fingerprint.template.MASK_BLOCK` pixels.
    """
    area = np.zeros((height, width), np.uint8)
    if len(x):
        pts = np.stack([np.round(x), np.round(y)], axis=1).astype(np.int32)
        hull = cv2.convexHull(pts)
        cv2.fillConvexPoly(area, hull, 1)
        cv2.polylines(area, [hull], True, 1)  # hulls of one or two points have no inside
    outside = cv2.distanceTransform(1 - area, cv2.DIST_L2, 5)
    return block_mask(outside <= margin)
