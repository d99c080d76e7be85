"""Regenerate docs/patterns.md from the pattern catalogue (yawlflow.patterns).

Usage: python docs/_gen_patterns.py [--check]

With --check, write nothing: exit 1 when docs/patterns.md differs from what the catalogue gives.
tests/patterns/test_catalogue.py runs the same comparison.
"""

from __future__ import annotations

import sys
from pathlib import Path

from yawlflow.patterns import render_markdown

TARGET = Path(__file__).resolve().parent / "patterns.md"


def main(argv: list[str]) -> int:
    """Write (or with ``--check``, compare) docs/patterns.md; return the exit code."""
    text = render_markdown()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run python docs/_gen_patterns.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
