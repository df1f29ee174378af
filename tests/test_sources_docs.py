"""Check that docs/sources.md documents every option of every source kind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgemon.sources import SOURCE_KINDS, source_class

DOC = Path(__file__).resolve().parents[1] / "docs" / "sources.md"


@pytest.mark.parametrize("kind", list(SOURCE_KINDS))
def test_every_option_documented(kind):
    text = DOC.read_text()
    table_rows = set(re.findall(r"^\| `([a-z0-9_]+)`", text, flags=re.MULTILINE))
    table_rows |= set(re.findall(r"^\| `[a-z_]+`, `([a-z_]+)`", text, flags=re.MULTILINE))
    missing = [
        option.name for option in source_class(kind).OPTIONS if option.name not in table_rows
    ]
    assert not missing, f"{kind} options missing from {DOC.name}: {missing}"
