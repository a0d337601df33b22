"""Finger positions (ANSI/NIST-ITL FGP codes) and which gallery positions a probe finger meets.

Codes: 0 unknown; 1-5 right thumb, index, middle, ring, little; 6-10 the same of the
left hand.  A probe finger of known position is compared with the gallery's samples
of that position (and with those of unknown position); one of unknown position with
every sample.  A position flagged *uncertain* - a finger cut out of a four-finger slap,
where segmentation may shift it by one - is also compared with the neighbouring
fingers of the same hand.
"""

from __future__ import annotations

UNKNOWN = 0
RIGHT_HAND = (1, 2, 3, 4, 5)
LEFT_HAND = (6, 7, 8, 9, 10)


def neighbours(position: int) -> tuple[int, ...]:
    """The fingers next to ``position`` on the same hand (thumb-index, ..., ring-little).

    Raises
    ------
    ValueError
        ``position`` is not a finger (1-10).
    """
    for hand in (RIGHT_HAND, LEFT_HAND):
        if position in hand:
            i = hand.index(position)
            return tuple(hand[j] for j in (i - 1, i + 1) if 0 <= j < len(hand))
    raise ValueError(f"finger position {position!r} is not an ANSI/NIST finger code 1-10")


def comparable_positions(position: int, uncertain: bool = False) -> frozenset[int] | None:
    """Gallery positions a probe finger is compared with (``None``: every position).

    Gallery samples of unknown position (0) are always compared as well; the caller
    adds them.
    """
    if position == UNKNOWN:
        return None
    return frozenset((position, *neighbours(position))) if uncertain else frozenset((position,))
