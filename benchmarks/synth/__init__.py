"""Synthetic fingerprints in the tradition of SFinGe (Cappelli, Maio, Maltoni).

A *master* fingerprint is a noise-free ridge pattern: a fingerprint area, a class with
its cores and deltas, an orientation field (zero-pole model), a ridge-period map and
ridges grown by iterative oriented (Gabor) filtering from random seeds, so that
minutiae arise where growing ridge fronts meet.  *Impressions* of a master add what a
press on a 500 ppi sensor adds: a rigid placement, elastic (plastic) skin distortion,
a partial contact area, dry or wet skin, noise and background.  Every impression
carries the master's minutiae mapped through its own transform.

Conventions used throughout
---------------------------
- Images are ``(H, W)`` arrays; ``x`` is the column (right), ``y`` the row (down).
- Lengths are pixels at 500 ppi.
- Angles are radians measured from ``+x`` towards ``+y`` (clockwise on screen, the
  image-coordinate convention of OpenCV).  Ridge orientations live in ``[0, pi)``;
  minutia directions in ``[0, 2 pi)``.
- Minutia direction: for a ridge *ending*, the direction from the ending into the
  ridge it terminates (along the ridge, away from the free end); for a
  *bifurcation*, the direction from the fork along the two branches (opposite to
  the stem).  Both point into the body of the ridge (ending) or of the valley
  (bifurcation = valley ending), so the convention is the same under ridge/valley
  duality.

Modules: :mod:`.orientation`, :mod:`.density`, :mod:`.area`, :mod:`.master`,
:mod:`.groundtruth`, :mod:`.press_style`, :mod:`.impression`, :mod:`.generate`,
:mod:`.preview`; ten-print subjects (ten fingers per person, rolled and flat):
:mod:`.fingers`, :mod:`.tenprint`.
"""

from __future__ import annotations

PPI = 500
