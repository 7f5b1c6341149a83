"""What the README quotes is what the project ships."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quoted_after(heading: str) -> str:
    """The first YAML block after `heading` in the README."""
    start = README.index(heading)
    match = re.compile(r"```yaml\n(.*?)```", re.S).search(README, start)
    assert match, f"no YAML block after {heading!r}"
    return match.group(1)


def test_the_quoted_example_is_the_example_file():
    quoted = quoted_after("For this test (from `examples/locusttest.yaml`)")
    shipped = (ROOT / "examples" / "locusttest.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(quoted) == yaml.safe_load(shipped)
    assert quoted.strip() in shipped  # word for word, not only the same meaning
