"""Fixtures for the waymark.formats tests: the real-world geodata corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _geo_corpus import DATA_DIR, parse_gdal_summary


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        missing = f"geodata corpus not found at {DATA_DIR} (set WAYMARK_GEO_DATA)"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)  # in CI a missing corpus is a failure, never a skip
        pytest.skip(missing)
    return DATA_DIR


@pytest.fixture(scope="session")
def gdal_counts(data_dir: Path) -> dict[str, dict]:
    return parse_gdal_summary((data_dir / "gdal-summary.txt").read_text(encoding="utf-8"))
