"""docs/dataset-schema.md documents exactly the engineered ops the parser accepts."""

from __future__ import annotations

import re
from pathlib import Path

from dataset.schema import ENGINEERED_OPS

DOC = Path(__file__).resolve().parents[3] / "docs" / "dataset-schema.md"


def _documented_ops() -> list[str]:
    text = DOC.read_text()
    section = text.split("### Engineered features", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.MULTILINE)


def test_op_table_matches_the_parser() -> None:
    assert _documented_ops() == list(ENGINEERED_OPS)
