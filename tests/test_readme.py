"""The README's snippets run: the command-line block, the scaling block and the Python block, with small
sizes (a test, not a benchmark: -n, --steps and --bootstrap are shrunk; nothing else is changed)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from chemzoo.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
SMALL = [(r"-n \d+", "-n 8"), (r"--steps \d+", "--steps 4"), (r"\bn=\d+", "n=4")]


def blocks(section: str, language: str) -> list[str]:
    """The ```language code blocks of a README section (from its heading to the next one of its level)."""
    text = README.read_text()
    start = text.index(f"\n{section}\n")
    level = section.split(" ")[0]
    end = text.find(f"\n{level} ", start + 1)
    body = text[start:end if end > 0 else None]
    return re.findall(rf"```{language}\n(.*?)```", body, flags=re.S)


def shrink(line: str) -> str:
    for pattern, small in SMALL:
        line = re.sub(pattern, small, line)
    return line


def commands(section: str) -> list[str]:
    out = []
    for block in blocks(section, "bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("chemzoo "):
                out.append(shrink(line))
    return out


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    (tmp_path / "training").symlink_to(README.parent / "training")  # the committed results the snippets read
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_all(lines: list[str], extra: dict[str, list[str]] | None = None) -> None:
    for line in lines:
        args = shlex.split(line)[1:]
        args += (extra or {}).get(args[0] + (" " + args[1] if len(args) > 1 else ""), [])
        result = CliRunner().invoke(main, [str(Path(a).expanduser()) for a in _glob(args)], catch_exceptions=False)
        assert result.exit_code == 0, f"README: {line}\n{result.output}"


def _glob(args: list[str]) -> list[str]:
    out = []
    for a in args:
        out += sorted(str(p) for p in Path(".").glob(a)) if "*" in a else [a]
    return out


def test_the_command_line_snippets_run(in_tmp):
    lines = commands("## Command line")
    assert len(lines) >= 7 and any(line.startswith("chemzoo md") for line in lines)
    run_all(lines)
    assert (in_tmp / "out.csv").is_file() and (in_tmp / "scores.csv").is_file() and (in_tmp / "traj.extxyz").is_file()


def test_the_scaling_snippets_run(in_tmp):
    lines = commands("## Scaling laws and training speed estimation")
    assert len(lines) >= 7
    fits = {k: ["--bootstrap", "50"] for k in ("scaling fit", "scaling plot", "scaling predict", "scaling advise")}
    run_all(lines, fits)
    assert (in_tmp / "sizes.png").is_file()


def test_the_python_snippet_runs(in_tmp):
    namespace: dict = {}
    for code in blocks("## Python", "python"):  # in order, one namespace, as a reader would type them
        exec(compile(shrink(code), "README.md (Python)", "exec"), namespace)  # noqa: S102 - our own README
    assert len(namespace["samples"].smiles) == 4 and namespace["atoms"].calc is not None
    assert namespace["out"]["energy"].shape == (2,) and namespace["out"]["forces"].shape == (6, 3)
