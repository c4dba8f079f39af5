"""Serving designs measured by ``make bench`` before any of them goes into ``service/``.

``inference process``: light gunicorn workers without TensorFlow hand encoded texts over a
Unix socket to one model process per pod, which batches across all of them (see
docs/performance.md for the figures and the choice).
"""
