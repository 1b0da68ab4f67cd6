"""Results tables: one row per training run (CSV), read and checked before anything is fitted.

The ladders write ``training/results/<family>.csv`` with at least ``family, model, params, n_train``
and a loss (``val_loss`` for ChemGPT in nats/token; ``test_force_mae_meV_per_A`` for potentials).
Any CSV with a header works: the columns to fit are chosen by name.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chemzoo.errors import ChemzooError


class ScalingDataError(ChemzooError, ValueError):
    """A results table that cannot be fitted: a missing column, a bad value, too few points."""


@dataclass
class Table:
    """The rows of a results CSV as strings, with the file name for error messages."""

    path: Path
    columns: list[str]
    rows: list[dict[str, str]]

    def require(self, *columns: str) -> None:
        for column in columns:
            if column not in self.columns:
                raise ScalingDataError(f"{self.path}: no column {column!r}; it has {', '.join(self.columns)}")

    def numbers(self, column: str, rows: list[dict[str, str]] | None = None) -> np.ndarray:
        """A column as positive finite floats; the first bad value is named with its line number."""
        self.require(column)
        out = []
        for row in rows if rows is not None else self.rows:
            text = row[column]
            try:
                value = float(text)
            except (TypeError, ValueError):
                raise ScalingDataError(f"{self.path} line {row['_line']}: {column} = {text!r} is not a number") from None
            if not math.isfinite(value) or value <= 0:
                raise ScalingDataError(f"{self.path} line {row['_line']}: {column} = {text!r}; a power law needs "
                                       "positive, finite values (drop or fix that run)")
            out.append(value)
        return np.array(out)

    def where(self, conditions: tuple[str, ...] = ()) -> "Table":
        """The rows where every ``COLUMN=VALUE`` condition holds (values compared as text, numbers as numbers)."""
        rows = self.rows
        for condition in conditions:
            column, sep, value = condition.partition("=")
            column, value = column.strip(), value.strip()
            if not sep or not column:
                raise ScalingDataError(f"--where {condition!r}: expected COLUMN=VALUE, e.g. architecture=painn")
            self.require(column)
            kept = [r for r in rows if _same(r[column], value)]
            if not kept:
                present = sorted({r[column] for r in rows})
                raise ScalingDataError(f"{self.path}: no row with {column} = {value!r} (it has "
                                       f"{', '.join(present[:12])}{', ...' if len(present) > 12 else ''})")
            rows = kept
        return Table(self.path, self.columns, rows)

    def groups(self, column: str | None) -> dict[str, list[dict[str, str]]]:
        """Rows by the value of ``column`` (all rows under "all" when None), in order of appearance."""
        if column is None:
            return {"all": self.rows}
        self.require(column)
        out: dict[str, list[dict[str, str]]] = {}
        for row in self.rows:
            out.setdefault(row[column], []).append(row)
        return out


def _same(text: str, value: str) -> bool:
    if text == value:
        return True
    try:
        return float(text) == float(value)
    except ValueError:
        return False


def read_table(path: str | Path, where: tuple[str, ...] = ()) -> Table:
    """Read a results CSV (UTF-8, a header row); one-line errors for a missing, empty or binary file."""
    path = Path(path)
    if not path.is_file():
        raise ScalingDataError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ScalingDataError(f"{path} is not a UTF-8 text (CSV) file") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if not columns:
        raise ScalingDataError(f"{path} is empty; expected a CSV with a header row")
    reader.fieldnames = columns
    rows = [{**{k: (v or "").strip() for k, v in row.items() if k is not None}, "_line": str(n)}
            for n, row in enumerate(reader, start=2) if any((v or "").strip() for v in row.values() if isinstance(v, str))]
    if not rows:
        raise ScalingDataError(f"{path} has a header but no rows")
    return Table(path, columns, rows).where(where)
