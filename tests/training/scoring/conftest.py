"""Fixtures of the bulk scoring tests: one loaded tiny bundle and generated input rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.bundle import load_bundle
from training.scoring.predict import Scorer


@pytest.fixture(scope="module")
def scorer(tiny_bundle: Path) -> Scorer:
    """Return the tiny bundle behind the scoring engine's Scorer."""
    return Scorer(load_bundle(tiny_bundle), batch_size=32)
