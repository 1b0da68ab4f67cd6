"""Writing files so that a reader never sees half of one: a temporary file beside the target, then a rename.

Every output chemzoo writes whole (CSV, JSON, SMILES, plots, checkpoint configs and cards) goes through
these; an interrupted or failed write leaves the previous file (or none), never a truncated one.
Streams that must grow while a run goes on (an MD trajectory and its log) are flushed per row instead.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """``fig.savefig`` (a matplotlib ``Figure``) through a temporary file and a rename; the format comes from
    ``path``'s suffix."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, **savefig_kwargs)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
