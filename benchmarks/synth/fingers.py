"""The ten fingers of a person: position codes, pattern class per position, missing fingers.

Finger positions are the ANSI/NIST-ITL finger position codes (FGP): 1 right thumb,
2 right index, 3 right middle, 4 right ring, 5 right little, 6 left thumb ... 10 left
little.

Pattern class per position
--------------------------
Arch / loop / whorl shares per digit are Galton's (*Finger Prints*, 1892, ch. VII,
Table I, p. 115: 5,000 rolled digits of 500 persons, percent)::

               right hand          left hand
               A   L   W           A   L   W
    thumb      3  53  44           5  65  30
    index     17  53  30          17  55  28
    middle     7  78  15           8  76  16
    ring       2  53  45           3  66  31
    little     1  86  13           2  90   8

Averaged over the ten digits that is 6.5 % arches, 67.5 % loops and 26 % whorls,
within two points of the FBI/NIST shares the single-finger generator uses
(:data:`.orientation.NATURAL_DISTRIBUTION`, Wilson, Candela and Watson 1994: 6.6 /
65.5 / 27.9 %).  Galton counted forked arches and nascent loops as arches, so his
index-finger arches (17 %) are on the generous side.

- Loop slope.  On the index fingers Galton found 21 of the 53 (right) and 21 of the
  55 (left) loop percent to open towards the thumb (radial, his "inner slope"); on
  every other digit he calls radial loops "much the more rare" without a figure.  We
  take 2 % of their loops (an assumption, :data:`RADIAL_SHARE_OTHER_DIGITS`), which
  makes radial loops 5.3 % of all fingers.  Over the ten positions the classes come
  to 3.6 / 2.9 / 35.1 / 32.4 / 26.0 % (arch, tented arch, left loop, right loop,
  whorl) against 3.7 / 2.9 / 33.8 / 31.7 / 27.9 % in NATURAL_DISTRIBUTION.
- Left and right loops.  The generator's classes are those of the print as seen
  (NIST SD4 and :mod:`.orientation`): a *left loop* opens to the left of the image.
  On an ink or live-scan print (ANSI/NIST images are as an ink print) the thumb side
  of a right-hand finger is on the left of the image and the little-finger side on
  the right, so an ulnar loop (opening towards the little finger) of the right hand
  is a *right loop* and a radial one a *left loop*; the left hand is the mirror
  image (ulnar = left loop).
- Plain and tented arches.  Galton does not split them; every position takes the
  split of :data:`.orientation.NATURAL_DISTRIBUTION` (2.9 of 6.6 % tented).
- Fingers of one person are alike.  Galton (p. 125) found whorls on *both* ring
  fingers of 26 % of persons, where independent fingers would give 45 % x 31 % = 14 %.
  A one-factor Gaussian copula ties the ten fingers together: each finger's latent
  ``sqrt(rho) z_person + sqrt(1 - rho) z_finger`` is read through its position's
  cumulative shares in the order arch < loop < whorl (the pattern-intensity order of
  dermatoglyphics: 0, 1 and 2 deltas).  ``rho`` = :data:`PERSON_CORRELATION` = 0.764
  reproduces Galton's 26 % exactly while every position keeps its own shares; one
  factor for all pairs probably overstates the likeness of unlike digits (thumb and
  little finger), which Galton found weaker.

Missing and unprintable fingers
-------------------------------
Rates are chosen, not measured (no population figure was at hand): each finger of a
subject is amputated with probability :data:`AMPUTATED_RATE` (0.5 %; gone from every
card, ANSI/NIST amputation code ``XX``) and, independently on each card, bandaged
with probability :data:`BANDAGED_RATE` (1 %; that card has no print of it, code
``UP``, unable to print).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from .orientation import CLASSES, NATURAL_DISTRIBUTION

#: ANSI/NIST-ITL finger position codes (FGP) 1-10 and their names.
FINGER_POSITIONS = {
    1: "right thumb", 2: "right index", 3: "right middle", 4: "right ring", 5: "right little",
    6: "left thumb", 7: "left index", 8: "left middle", 9: "left ring", 10: "left little",
}

#: Galton (1892), Table I: percent arches, loops and whorls per position (rows sum to 100).
GALTON_1892_ALW = {
    1: (3, 53, 44), 2: (17, 53, 30), 3: (7, 78, 15), 4: (2, 53, 45), 5: (1, 86, 13),
    6: (5, 65, 30), 7: (17, 55, 28), 8: (8, 76, 16), 9: (3, 66, 31), 10: (2, 90, 8),
}
#: Share of index-finger loops that are radial: Galton's 21 of 53 (right), 21 of 55 (left).
RADIAL_SHARE_INDEX = {2: 21 / 53, 7: 21 / 55}
#: Share of the loops of other digits that are radial (an assumption; see the module docstring).
RADIAL_SHARE_OTHER_DIGITS = 0.02
#: Share of arches that are tented (Wilson, Candela and Watson 1994, via NATURAL_DISTRIBUTION).
TENTED_SHARE = NATURAL_DISTRIBUTION["tented_arch"] / (NATURAL_DISTRIBUTION["arch"]
                                                      + NATURAL_DISTRIBUTION["tented_arch"])
#: Copula correlation of two fingers of one person, fitted to Galton's double ring-finger whorls.
PERSON_CORRELATION = 0.764

#: Probability that a finger is amputated (chosen, not measured).
AMPUTATED_RATE = 0.005
#: Probability that a finger is bandaged on one card (chosen, not measured).
BANDAGED_RATE = 0.01
PRINTED, AMPUTATED, BANDAGED = "printed", "amputated", "bandaged"


def is_right_hand(position: int) -> bool:
    """Whether ANSI/NIST finger position ``position`` (1-10) is on the right hand."""
    _check_position(position)
    return position <= 5


def _check_position(position: int) -> None:
    if position not in FINGER_POSITIONS:
        raise ValueError(f"finger position {position!r} is not an ANSI/NIST code 1-10")


def position_distribution(position: int) -> dict[str, float]:
    """Shares of the generator's classes (:data:`.orientation.CLASSES`) on one finger position.

    Parameters
    ----------
    position : int
        ANSI/NIST finger position 1-10.

    Returns
    -------
    dict
        Class name to probability (sums to 1), as explained in the module docstring.
    """
    _check_position(position)
    arch, loop, whorl = (v / 100 for v in GALTON_1892_ALW[position])
    radial = RADIAL_SHARE_INDEX.get(position, RADIAL_SHARE_OTHER_DIGITS)
    ulnar_class, radial_class = ("right_loop", "left_loop") if is_right_hand(position) else ("left_loop", "right_loop")
    shares = {"arch": arch * (1 - TENTED_SHARE), "tented_arch": arch * TENTED_SHARE,
              ulnar_class: loop * (1 - radial), radial_class: loop * radial, "whorl": whorl}
    return {c: shares[c] for c in CLASSES}


def sample_classes(rng: np.random.Generator, correlation: float = PERSON_CORRELATION) -> dict[int, str]:
    """Pattern class of each of a person's ten fingers.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    correlation : float
        Copula correlation of two fingers, in ``[0, 1)``; 0 draws fingers independently.

    Returns
    -------
    dict
        Finger position (1-10) to class name; each position follows
        :func:`position_distribution` whatever ``correlation`` is.
    """
    if not 0.0 <= correlation < 1.0:
        raise ValueError(f"correlation must be in [0, 1), got {correlation}")
    person = rng.standard_normal()
    own = rng.standard_normal(len(FINGER_POSITIONS))
    # Uniform on (0, 1) per finger, correlated across the ten through the person's factor.
    u = ndtr(np.sqrt(correlation) * person + np.sqrt(1.0 - correlation) * own)
    split = rng.random((len(FINGER_POSITIONS), 2))  # plain/tented arch, ulnar/radial loop
    out = {}
    for i, position in enumerate(FINGER_POSITIONS):
        d = position_distribution(position)
        arch = d["arch"] + d["tented_arch"]
        whorl = d["whorl"]
        if u[i] < arch:
            out[position] = "tented_arch" if split[i, 0] < TENTED_SHARE else "arch"
        elif u[i] < 1.0 - whorl:
            right = is_right_hand(position)
            radial = RADIAL_SHARE_INDEX.get(position, RADIAL_SHARE_OTHER_DIGITS)
            is_radial = split[i, 1] < radial
            out[position] = "left_loop" if is_radial == right else "right_loop"
        else:
            out[position] = "whorl"
    return out


def sample_status(rng: np.random.Generator, cards: int, amputated_rate: float = AMPUTATED_RATE,
                  bandaged_rate: float = BANDAGED_RATE) -> dict[int, list[str]]:
    """Whether each finger could be printed on each of a subject's ``cards`` ten-print cards.

    Returns
    -------
    dict
        Finger position (1-10) to a list of ``cards`` statuses: :data:`PRINTED`,
        :data:`AMPUTATED` (on every card) or :data:`BANDAGED` (on that card only).
    """
    for name, rate in (("amputated", amputated_rate), ("bandaged", bandaged_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} rate must be a probability in [0, 1], got {rate}")
    if cards < 1:
        raise ValueError(f"need at least one card, got {cards}")
    amputated = rng.random(len(FINGER_POSITIONS)) < amputated_rate
    bandaged = rng.random((len(FINGER_POSITIONS), cards)) < bandaged_rate
    return {position: [AMPUTATED if amputated[i] else BANDAGED if bandaged[i, c] else PRINTED
                       for c in range(cards)]
            for i, position in enumerate(FINGER_POSITIONS)}
