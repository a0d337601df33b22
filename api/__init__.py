"""The HTTP query service: FastAPI routes over :mod:`indexer` and :mod:`matcher`.

``app`` (routes), ``service`` (what they do), ``auth``/``keys`` (API keys and roles),
``access`` (bureaus), ``audit`` (hash-chained log), ``jobs`` (batch searches),
``evidence`` (PNG), ``problems`` (RFC 9457 errors), ``cli`` (``locard serve/keys/audit``).
"""
