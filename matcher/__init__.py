"""Extraction and 1:1 comparison, one subpackage per modality.

``matcher`` knows images and templates only: no database, no HTTP, no files it was
not handed.  Shared pieces live here: :mod:`matcher.errors` (typed errors),
:mod:`matcher.imageio` (bytes -> checked image array) and :mod:`matcher.calibration`
(score <-> false match rate).
"""
