"""Impressions of a master: placement, skin distortion, contact, pressure, noise.

The geometric part is one analytic map from master to impression coordinates,

    q = R(angle) (p + e(p) - pivot) + target,

where ``e`` is the plastic distortion of Cappelli, Maio and Maltoni (2001): no motion
inside the close-contact region, a rigid drag and twist of the skin outside it, and a
smooth blend between the two; plus a few gentle random waves for the unevenness of
real skin.  Minutiae go forward through the map; pixels are pulled back through its
inverse (fixed-point iteration, since ``e`` is smooth and small in slope).

The photometric part turns the warped ridge pattern into a sensor image: a contact
area with a ragged edge, a pressure that thins and breaks ridges (dry) or thickens
and merges them (wet), blotches, blur, noise and a background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .groundtruth import Minutiae
from .press_style import FVC_STYLE, PressStyle

#: Impression size ``(H, W)``, pixels at 500 ppi (the size of FVC2002 DB4).
IMPRESSION_SHAPE = (384, 288)


@dataclass(frozen=True)
class ImpressionTransform:
    """Master-to-impression map (all lengths pixels, angles radians).

    Attributes
    ----------
    angle : float
        Rigid rotation, image-coordinate convention (clockwise on screen).
    pivot : (float, float)
        Master point ``(x, y)`` the rotation turns about.
    target : (float, float)
        Where ``pivot`` lands in the impression.
    contact : (float, float)
        Centre of the close-contact region, master coordinates.
    radii : (float, float)
        Inner and outer radius of the distortion blend: no distortion inside the
        inner one, full drag and twist beyond the outer one.
    drag : (float, float)
        Translation of the skin outside the close-contact region.
    twist : float
        Rotation of that skin about ``contact``.
    waves : (n, 5) array
        Random displacement waves ``(amp_x, amp_y, k_x, k_y, phase)``.
    """

    angle: float
    pivot: tuple[float, float]
    target: tuple[float, float]
    contact: tuple[float, float]
    radii: tuple[float, float]
    drag: tuple[float, float]
    twist: float
    waves: np.ndarray

    def displacement(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Skin distortion ``e(p)`` at master points, pixels."""
        cx, cy = self.contact
        rx, ry = x - cx, y - cy
        r = np.hypot(rx, ry)
        r0, r1 = self.radii
        t = np.clip((r - r0) / (r1 - r0), 0.0, 1.0)
        brake = t * t * (3 - 2 * t)  # smoothstep: no kink at either radius
        c, s = np.cos(self.twist), np.sin(self.twist)
        # Rigid motion of the outer skin relative to the contact centre.
        ox = c * rx - s * ry - rx + self.drag[0]
        oy = s * rx + c * ry - ry + self.drag[1]
        ex, ey = brake * ox, brake * oy
        for ax, ay, kx, ky, ph in self.waves:
            wave = np.sin(kx * x + ky * y + ph)
            ex = ex + ax * wave
            ey = ey + ay * wave
        return ex, ey

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Master points to impression points, pixels."""
        ex, ey = self.displacement(x, y)
        dx, dy = x + ex - self.pivot[0], y + ey - self.pivot[1]
        c, s = np.cos(self.angle), np.sin(self.angle)
        return c * dx - s * dy + self.target[0], s * dx + c * dy + self.target[1]

    def inverse(self, u: np.ndarray, v: np.ndarray, iterations: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """Impression points back to master points (fixed-point iteration), pixels."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        du, dv = u - self.target[0], v - self.target[1]
        # p + e(p) = rigid^-1(q) =: b, so p = b - e(p).
        bx = c * du + s * dv + self.pivot[0]
        by = -s * du + c * dv + self.pivot[1]
        x, y = bx, by
        for _ in range(iterations):
            ex, ey = self.displacement(x, y)
            x, y = bx - ex, by - ey
        return x, y

    def map_minutiae(self, m: Minutiae) -> Minutiae:
        """Minutiae through the map; directions follow the local Jacobian."""
        u, v = self.forward(m.x, m.y)
        step = 3.0
        u2, v2 = self.forward(m.x + step * np.cos(m.direction), m.y + step * np.sin(m.direction))
        direction = np.mod(np.arctan2(v2 - v, u2 - u), 2 * np.pi)
        return Minutiae(u, v, direction, m.kind.copy())


def sample_transform(master_centre: tuple[float, float], rng: np.random.Generator,
                     shape: tuple[int, int] = IMPRESSION_SHAPE,
                     style: PressStyle = FVC_STYLE) -> ImpressionTransform:
    """Draw a placement and a distortion for one press.

    With :data:`FVC_STYLE`, meant to vary as much as an FVC2002 acquisition, whose
    volunteers were asked to move, rotate, press harder or softer and drag the finger
    between impressions.  Placement: three presses in four turn by N(0, 8 deg), the
    fourth by 15-35 deg; the finger centre lands within about 25-35 px of the image
    centre, one press in four much further off, so the impression is strongly
    partial.  Distortion: the skin outside a close-contact region 30-80 px across is
    dragged by ~10 px on average (up to 25) and twisted by N(0, 3.5 deg).
    """
    h, w = shape
    if rng.random() < 1.0 - style.large_turn_share:
        angle = float(rng.normal(0, style.rotation_sd))
    else:
        angle = float(rng.choice([-1.0, 1.0]) * np.radians(rng.uniform(15, 35)))
    spread = np.array(style.spread) * (2.4 if rng.random() < style.far_share else 1.0)
    target = (w / 2 + rng.normal(0, spread[0]), h / 2 + rng.normal(0, spread[1]))
    contact = (master_centre[0] + rng.normal(0, 20), master_centre[1] + rng.normal(0, 25))
    r0 = rng.uniform(15, 40)
    r1 = r0 + rng.uniform(80, 130)
    drag_len = min(style.drag_max, rng.gamma(2.0, style.drag_scale))
    drag_dir = rng.uniform(0, 2 * np.pi)
    drag = (drag_len * np.cos(drag_dir), drag_len * np.sin(drag_dir))
    twist = float(np.clip(rng.normal(0, style.twist_sd), -np.radians(8), np.radians(8)))
    waves = []
    for _ in range(3):
        a = rng.uniform(0, 2 * np.pi)
        k = 2 * np.pi / rng.uniform(120, 260)
        amp = rng.normal(0, 1.5, 2)
        waves.append((amp[0], amp[1], k * np.cos(a), k * np.sin(a), rng.uniform(0, 2 * np.pi)))
    return ImpressionTransform(angle, master_centre, target, contact, (r0, r1), drag, twist,
                               np.array(waves))


def pull_back_maps(t: ImpressionTransform, shape: tuple[int, int] = IMPRESSION_SHAPE,
                   step: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``cv2.remap`` maps: master coordinates of every impression pixel.

    The inverse is solved on a grid every ``step`` px and interpolated, which is exact
    enough (the map is smooth) and a sixteenth of the work.
    """
    h, w = shape
    gv, gu = np.mgrid[0 : h + step : step, 0 : w + step : step].astype(np.float64)
    mx, my = t.inverse(gu, gv)
    # Coarse node (i, j) sits at pixel (i * step, j * step): sample it at pixel / step.
    xs = np.arange(w, dtype=np.float32) / step
    ys = np.arange(h, dtype=np.float32) / step
    grid_x, grid_y = np.meshgrid(xs, ys)
    mx = cv2.remap(mx.astype(np.float32), grid_x, grid_y, cv2.INTER_LINEAR)
    my = cv2.remap(my.astype(np.float32), grid_x, grid_y, cv2.INTER_LINEAR)
    return mx, my


def _noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth Gaussian noise of correlation length ``sigma`` px, unit standard deviation.

    Wide blurs are made on a coarse grid and enlarged: the result is as smooth and a
    large blur kernel on the full grid would cost tens of times more.
    """
    h, w = shape
    factor = max(1, int(sigma // 2))
    small = rng.standard_normal((h // factor + 3, w // factor + 3)).astype(np.float32)
    n = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    if factor > 1:
        n = cv2.resize(n, ((w // factor + 3) * factor, (h // factor + 3) * factor),
                       interpolation=cv2.INTER_LINEAR)
    n = np.ascontiguousarray(n[factor : factor + h, factor : factor + w])
    return n / max(float(n.std()), 1e-6)


@dataclass(frozen=True)
class Press:
    """Photometric parameters of one press.

    Attributes
    ----------
    pressure : float
        ``-1`` very dry (thin, broken ridges) to ``+1`` very wet (thick, merged).
    contact_scale : float
        Size of the contact ellipse relative to the fingerprint area (< 1: partial).
    contact_offset : (float, float)
        Shift of the contact ellipse centre, pixels.
    ridge_level, valley_level : float
        Gray levels of ridges and of valleys/background, 0-255.
    blur : float
        Sensor blur, Gaussian sigma in pixels.
    noise : float
        Additive sensor noise, gray levels (standard deviation).
    stripes : float
        Fixed-pattern row/column noise of solid-state sensors, gray levels (0: none).
    """

    pressure: float
    contact_scale: float
    contact_offset: tuple[float, float]
    ridge_level: float
    valley_level: float
    blur: float
    noise: float
    stripes: float


def sample_press(rng: np.random.Generator, style: PressStyle = FVC_STYLE) -> Press:
    """Draw the photometric parameters of one press.

    With :data:`FVC_STYLE` three presses in four look like an optical sensor (light
    background, dark ridges, FVC2002 DB1/DB4); one in four like a capacitive one
    (dark, low contrast, noisier, with row and column stripes, as FVC2002 DB3).
    """
    pressure = float(np.clip(rng.normal(0, 0.55), -1, 1))
    # Light (dry) presses touch less of the finger.
    scale = float(np.clip(rng.normal(style.contact_mean + style.contact_slope * pressure, style.contact_sd),
                          *style.contact_range))
    capacitive = rng.random() < style.capacitive_share
    return Press(
        pressure=pressure,
        contact_scale=scale,
        contact_offset=(float(rng.normal(0, style.contact_offset_sd[0])),
                        float(rng.normal(0, style.contact_offset_sd[1]))),
        ridge_level=float(rng.uniform(10, 45) if capacitive else rng.uniform(15, 80)),
        valley_level=float(rng.uniform(95, 150) if capacitive else rng.uniform(175, 235)),
        blur=float(rng.uniform(0.6, 1.2)),
        noise=float(rng.uniform(2.5, 5.0) if capacitive else rng.uniform(1.0, 3.0)),
        stripes=float(rng.uniform(2.0, 6.0) if capacitive else 0.0),
    )


def creases(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Creases, scars and scratches: thin bright lines where no ridge touches, ``[0, 1]``.

    Two presses in five carry one to four of them, 1-3 px wide, mostly running across
    the finger as flexion creases do.
    """
    h, w = shape
    lines = np.zeros(shape, np.float32)
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(1, 5))):
            angle = rng.normal(0, 0.5) + (np.pi / 2 if rng.random() < 0.2 else 0.0)
            cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
            half = rng.uniform(30, 160)
            p0 = (int(cx - half * np.cos(angle)), int(cy - half * np.sin(angle)))
            p1 = (int(cx + half * np.cos(angle)), int(cy + half * np.sin(angle)))
            cv2.line(lines, p0, p1, 1.0, int(rng.integers(1, 4)), cv2.LINE_AA)
    return cv2.GaussianBlur(lines, (0, 0), 0.7) if lines.any() else lines


def contact_mask(finger: np.ndarray, centre: tuple[float, float], half: tuple[float, float],
                 rng: np.random.Generator) -> np.ndarray:
    """Area of the finger touching the sensor, ``[0, 1]``, with a ragged edge.

    Parameters
    ----------
    finger : (H, W) float array
        Fingerprint area warped into the impression.
    centre : (float, float)
        Centre of the contact ellipse, impression pixels.
    half : (float, float)
        Half-axes of the contact ellipse, pixels.
    """
    h, w = finger.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xs - centre[0]) / half[0]) ** 2 + ((ys - centre[1]) / half[1]) ** 2)
    ragged = 1.0 - r + 0.035 * _noise((h, w), 20.0, rng)
    ellipse = np.clip(ragged / 0.08 + 0.5, 0, 1)
    return ellipse * finger


def ink_threshold(shape: tuple[int, int], pressure: float, rng: np.random.Generator) -> np.ndarray:
    """Level of the ridge profile above which a press inks, per pixel (the first draws of
    :func:`render` after the contact area).

    A wet finger inks more of each ridge profile, a dry one less; pressure is never even
    across the finger (blotches).  The offset thins ridges to about half the period at
    normal pressure.
    """
    return 0.1 - 0.45 * pressure + 0.22 * _noise(shape, 14.0, rng) + 0.1 * _noise(shape, 4.0, rng)


def ridge_intact(shape: tuple[int, int], pressure: float, rng: np.random.Generator) -> np.ndarray:
    """Share of the ink each pixel keeps where dry skin breaks ridges into dots, ``[0, 1]``
    (the draws of :func:`render` after :func:`ink_threshold`).

    Stronger when drier; where it is low, extraction misses minutiae (and the
    template-level extraction-noise model looks it up for that).
    """
    dryness = max(0.0, -pressure) * 0.9 + 0.05
    breaks = _noise(shape, 1.6, rng) + 0.7 * _noise(shape, 6.0, rng)
    return np.clip((breaks + 2.6 - 2.6 * dryness) / 0.6, 0, 1)


def render(ridges: np.ndarray, finger: np.ndarray, press: Press, rng: np.random.Generator,
           contact_centre: tuple[float, float], contact_half: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Sensor image of a warped ridge pattern.

    Parameters
    ----------
    ridges : (H, W) float32 array
        Warped master ridge pattern in ``[-1, 1]``, ridges positive.
    finger : (H, W) float32 array
        Warped fingerprint area in ``[0, 1]``.
    press : Press
    rng : numpy.random.Generator
    contact_centre, contact_half : see :func:`contact_mask`.

    Returns
    -------
    image : (H, W) uint8 array
        Dark ridges on a light background.
    contact : (H, W) float32 array
        Where the finger touched, ``[0, 1]``.
    """
    shape = ridges.shape
    contact = contact_mask(finger, contact_centre, contact_half, rng)
    ink = np.clip((ridges - ink_threshold(shape, press.pressure, rng)) / 0.35 + 0.5, 0, 1)
    ink *= ridge_intact(shape, press.pressure, rng)
    # Sweat pores: small bright dots scattered over the ridges.
    pores = np.clip((_noise(shape, 0.9, rng) - 2.4) / 0.4, 0, 1)
    ink *= 1.0 - pores
    ink *= 1.0 - creases(shape, rng)
    # Contact falls off towards the edge of the contact area, with a soft rim.
    ink *= np.clip(contact * 1.4, 0, 1) ** 1.5
    # Grain of the skin and the optics, blurred with the image: most sensor noise is
    # spatially correlated, and it keeps the PNGs small.
    ink = ink + 0.12 * rng.standard_normal(shape) * (ink > 0.02)
    ink = cv2.GaussianBlur(ink.astype(np.float32), (0, 0), press.blur)

    background = press.valley_level + 6.0 * _noise(shape, 40.0, rng)
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    background += rng.normal(0, 8) * (ys / h - 0.5) + rng.normal(0, 8) * (xs / w - 0.5)
    # The finger's skin shades the platen a little even in the valleys.
    background -= rng.uniform(0, 25) * cv2.GaussianBlur(contact, (0, 0), 6.0)
    image = background - (background - press.ridge_level) * ink
    image += rng.normal(0, press.noise, shape)
    if press.stripes > 0:
        image += rng.normal(0, press.stripes, (h, 1)) + rng.normal(0, 0.5 * press.stripes, (1, w))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), contact.astype(np.float32)


@dataclass(frozen=True)
class Impression:
    """One impression: its image, where it touched, its transform and ground truth."""

    image: np.ndarray
    contact: np.ndarray
    transform: ImpressionTransform
    press: Press
    minutiae: Minutiae
    cores: np.ndarray
    deltas: np.ndarray


def _visible(x: np.ndarray, y: np.ndarray, contact: np.ndarray, margin: float = 6.0) -> np.ndarray:
    """Points inside the image (by ``margin`` px) where the finger touched."""
    h, w = contact.shape
    inside = (x >= margin) & (y >= margin) & (x < w - margin) & (y < h - margin)
    xi = np.clip(np.rint(x).astype(np.int64), 0, w - 1)
    yi = np.clip(np.rint(y).astype(np.int64), 0, h - 1)
    return inside & (contact[yi, xi] > 0.6)


@dataclass(frozen=True)
class Placement:
    """Where and how a press lands, before any pixel of its image is drawn.

    Attributes
    ----------
    transform : ImpressionTransform
    press : Press
    maps : (mx, my) float32 arrays
        Master coordinates of every impression pixel (:func:`pull_back_maps`).
    finger : (H, W) float32 array
        The fingerprint area warped into the impression, ``[0, 1]``.
    contact_centre, contact_half : (float, float)
        Contact ellipse, impression pixels (see :func:`contact_mask`).
    """

    transform: ImpressionTransform
    press: Press
    maps: tuple[np.ndarray, np.ndarray]
    finger: np.ndarray
    contact_centre: tuple[float, float]
    contact_half: tuple[float, float]


def place(master, rng: np.random.Generator, shape: tuple[int, int] = IMPRESSION_SHAPE,
          style: PressStyle = FVC_STYLE) -> Placement:
    """Draw a press of ``master``: its transform and photometric parameters, warp its area.

    Draws from ``rng`` exactly what :func:`make_impression` draws before rendering, so a
    caller that goes on with the same ``rng`` gets the same contact area
    (:func:`contact_mask` is the first draw of :func:`render`).
    """
    area = master.area
    t = sample_transform((area.cx, area.cy), rng, shape, style)
    press = sample_press(rng, style)
    mx, my = pull_back_maps(t, shape)
    finger = cv2.remap(master.mask, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=0.0)
    cx, cy = t.forward(np.array([area.cx]), np.array([area.cy]))
    centre = (float(cx[0]) + press.contact_offset[0], float(cy[0]) + press.contact_offset[1])
    half = (area.half_width * press.contact_scale, 0.5 * area.size[1] * press.contact_scale)
    return Placement(t, press, (mx, my), finger, centre, half)


def visible_minutiae(master, transform: ImpressionTransform, contact: np.ndarray) -> Minutiae:
    """Ground truth of an impression: the master's minutiae mapped in, where the finger touched."""
    m = transform.map_minutiae(master.minutiae)
    return m.subset(_visible(m.x, m.y, contact))


def make_impression(master, rng: np.random.Generator,
                    shape: tuple[int, int] = IMPRESSION_SHAPE, style: PressStyle = FVC_STYLE) -> Impression:
    """One impression of ``master`` (a :class:`.master.Master`), pressed in ``style``.

    Ground truth is the master's minutiae mapped through the impression's transform,
    kept where the finger touched the sensor inside the image.
    """
    p = place(master, rng, shape, style)
    mx, my = p.maps
    ridges = cv2.remap(master.ridges, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=-1.0)
    image, contact = render(ridges, p.finger, p.press, rng, p.contact_centre, p.contact_half)
    t = p.transform
    sing = master.singularities
    cores = np.stack(t.forward(sing.cores[:, 0], sing.cores[:, 1]), axis=1) if len(sing.cores) else np.zeros((0, 2))
    deltas = np.stack(t.forward(sing.deltas[:, 0], sing.deltas[:, 1]), axis=1) if len(sing.deltas) else np.zeros((0, 2))
    return Impression(image, contact, t, p.press, visible_minutiae(master, t, contact), cores, deltas)
