"""Interchange formats: bytes of the standards bureaus exchange, to and from locard's own types."""
