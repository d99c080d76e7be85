"""Handlers for examples/greet.yaml, allowed by examples/yawlflow.yaml."""

from __future__ import annotations


def hello(data: dict[str, object]) -> dict[str, object]:
    """Greet ``name`` (default: world); always sets ``name``, which the split reads."""
    name = str(data.get("name") or "world")
    return {"name": name, "greeting": f"Hello, {name}!"}


def shout(data: dict[str, object]) -> dict[str, object]:
    """Long names are greeted louder."""
    return {"greeting": str(data["greeting"]).upper()}
