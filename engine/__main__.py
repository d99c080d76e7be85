"""``python -m yawlflow``: the ``yawlflow`` command (see :mod:`yawlflow.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
