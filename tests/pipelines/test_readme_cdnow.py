"""The README's CDNOW commands run as printed in a fresh shell and print what the README shows.

The figures themselves move with the scoring, so the output is compared line by line by what
each line says (its label and the data's own counts), not by every digit.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pipelines.cli import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("### Worked example: CDNOW", 1)[1].split("\n## ", 1)[0]


def _blocks(section: str, kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", section, re.S)


def _commands(block: str) -> list[str]:
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]


def _labels(text: str) -> list[str]:
    """The lines without figures (titles, table headers, files written), spacing aside."""
    return [" ".join(line.split()) for line in text.splitlines() if not re.search(r"\d", line)]


def _data_lines(text: str) -> list[str]:
    """What the data alone decides: the question asked, the people and who bought."""
    return [
        line for line in text.splitlines() if line.startswith(("heatsync backtest", "  contacts"))
    ]


def test_cdnow_commands_work_as_printed(tmp_path: Path) -> None:
    section = _section()
    shells = _blocks(section, "sh")
    texts = _blocks(section, "text")
    assert len(shells) == 2 and len(texts) == 2
    # The checkout as a fresh clone after `make install` sees it: its .venv and its files, and no
    # virtualenv on PATH. The README's /tmp/cdnow becomes a folder of this test.
    for name in (".venv", "benchmarks"):
        (tmp_path / name).symlink_to(PROJECT_ROOT / name)
    data = tmp_path / "cdnow"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}

    def run(command: str) -> str:
        done = subprocess.run(
            ["bash", "-c", command.replace("/tmp/cdnow", str(data))],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        return done.stdout

    convert, backtest = _commands(shells[0])
    assert "wrote 23,570 contacts" in run(convert)
    printed = run(backtest)
    assert _labels(printed) == _labels(texts[0]) and _labels(printed)
    assert _data_lines(printed) == _data_lines(texts[0]) and len(_data_lines(printed)) == 2
    assert (tmp_path / "cdnow.png").stat().st_size > 10_000

    calibrate, backtest_fitted = _commands(shells[1])
    calibrated = run(calibrate)
    assert calibrated.startswith("wrote cdnow.yaml: ") and texts[1].startswith("wrote cdnow.yaml: ")
    assert _data_lines(run(backtest_fitted)) == _data_lines(texts[1])
    assert (tmp_path / "cdnow.yaml").is_file()
