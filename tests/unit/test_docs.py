"""Docs match the code: every setting is documented in the README and docs/configuration.md."""

import dataclasses
from pathlib import Path

import pytest

from waymark.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FIELDS = [f.name for f in dataclasses.fields(Settings)]


@pytest.mark.parametrize("doc", ["README.md", "docs/configuration.md"])
def test_every_setting_is_documented(doc):
    text = (ROOT / doc).read_text()
    missing = [f for f in FIELDS if f"WAYMARK_{f.upper()}" not in text]
    assert not missing, f"{doc} does not document: {missing}"


def test_documented_settings_exist():
    import re

    text = (ROOT / "docs/configuration.md").read_text()
    documented = set(re.findall(r"`WAYMARK_([A-Z_]+?)(?:_FILE)?`", text))
    # WAYMARK_MASTER_KEY_FILE is a setting of its own, not the _FILE form of "master_key"
    unknown = {d for d in documented if d.lower() not in FIELDS and f"{d}_file".lower()
               not in FIELDS and d not in {"NAME", "<NAME>"}}
    assert not unknown, f"docs/configuration.md documents settings that do not exist: {unknown}"


def test_readme_shows_the_two_commands_and_screenshot():
    text = (ROOT / "README.md").read_text()
    assert "make run" in text and "make test" in text
    assert "docs/screenshot.png" in text
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in ci


def test_changelog_is_kept():
    """CHANGELOG.md has an Unreleased section and one for the version in pyproject.toml."""
    import re
    import tomllib

    text = (ROOT / "CHANGELOG.md").read_text()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert "## [Unreleased]" in text
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.MULTILINE), \
        f"CHANGELOG.md has no section for version {version}"
    headings = re.findall(r"^## \[(.+?)\]", text, re.MULTILINE)
    assert headings[0] == "Unreleased", "Unreleased comes first"
