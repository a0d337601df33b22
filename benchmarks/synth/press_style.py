"""Styles of press: the numbers that make an FVC-like, a rolled or a flat impression.

:mod:`.impression` draws every press from a :class:`PressStyle`; the default,
:data:`FVC_STYLE`, is the single-finger generator's FVC2002-like acquisition, and
:mod:`.tenprint` defines the rolled and flat styles of ten-print cards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PressStyle:
    """How presses are made: the spread of placement, distortion, contact and sensor.

    The defaults (:data:`FVC_STYLE`) are an FVC2002-like acquisition; other styles
    (rolled and flat ten-print impressions, :mod:`.tenprint`) change the numbers, not
    the model.  Angles are radians, lengths pixels.

    Attributes
    ----------
    rotation_sd : float
        Standard deviation of the turn of an ordinary press.
    large_turn_share : float
        Share of presses turned by 15-35 degrees instead.
    spread : (float, float)
        Standard deviation of where the finger centre lands, ``(x, y)``.
    far_share : float
        Share of presses landing 2.4 times further off (strongly partial).
    drag_scale, drag_max : float
        Skin drag outside the close-contact region: Gamma(2, ``drag_scale``), capped.
    twist_sd : float
        Standard deviation of the twist of that skin (capped at 8 degrees).
    contact_mean, contact_slope, contact_sd : float
        Contact-ellipse scale ~ N(``contact_mean + contact_slope * pressure``, ``contact_sd``).
    contact_range : (float, float)
        Limits of that scale (below 1: a partial print).
    contact_offset_sd : (float, float)
        Standard deviation of the contact ellipse's shift, ``(x, y)``.
    capacitive_share : float
        Share of presses that look like a capacitive sensor (dark, noisy, striped).
    """

    rotation_sd: float = float(np.radians(8))
    large_turn_share: float = 0.25
    spread: tuple[float, float] = (25.0, 32.0)
    far_share: float = 0.25
    drag_scale: float = 5.0
    drag_max: float = 25.0
    twist_sd: float = float(np.radians(3.5))
    contact_mean: float = 0.88
    contact_slope: float = 0.12
    contact_sd: float = 0.12
    contact_range: tuple[float, float] = (0.5, 1.15)
    contact_offset_sd: tuple[float, float] = (14.0, 22.0)
    capacitive_share: float = 0.25


#: An FVC2002-like acquisition: the single-finger generator's presses.
FVC_STYLE = PressStyle()
