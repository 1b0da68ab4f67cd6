"""Render a model card from ``cards/<family>.md`` (a ``string.Template`` with Hub YAML metadata)."""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

CARDS = Path(__file__).resolve().parent.parent / "cards"


def _fmt(x) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def render_card(family: str, metadata: dict) -> str:
    """Card text: every ``$key`` of the template filled from ``metadata`` (nested ``metrics`` flattened)."""
    values = {k: _fmt(v) for k, v in metadata.items() if not isinstance(v, dict)}
    values.update({k: _fmt(v) for k, v in metadata.get("metrics", {}).items()})
    values.update({k: _fmt(v) for k, v in metadata.get("evaluation", {}).items()})
    values["run_json"] = json.dumps(metadata.get("run", {}), indent=2)
    return Template((CARDS / f"{family}.md").read_text()).safe_substitute(values)
