"""The README's lead example runs as printed and its figures are the ones the commands print."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pipelines.cli import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("### Worked example: leads", 1)[1].split("\n### ", 1)[0]


def test_lead_commands_work_as_printed_and_print_the_readme_figures(tmp_path: Path) -> None:
    section = _section()
    block = re.findall(r"```sh\n(.*?)```", section, re.S)[0]
    commands = [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]
    assert len(commands) == 4
    for name in (".venv", "benchmarks"):
        (tmp_path / name).symlink_to(PROJECT_ROOT / name)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}

    def run(command: str) -> str:
        done = subprocess.run(
            ["bash", "-c", command.replace("/tmp/leads", str(tmp_path / "leads"))],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        return done.stdout

    convert, default, calibrate, calibrated = (run(c) for c in commands)
    assert convert.startswith("wrote 8,000 contacts")
    prose = " ".join(section.split())
    # the defaults' AUC and band conversions, as the README quotes them
    auc = re.search(r"ROC AUC (\d\.\d+)", default)
    assert auc and f"ROC AUC {float(auc.group(1)):.2f}" in prose
    for band in ("hot", "warm", "cold"):
        rate = re.search(rf"^  {band} +[\d,]+ +[\d,]+ +([\d.]+%)", default, re.M)
        assert rate and f"{band} {rate.group(1)}" in prose
    validation = re.search(r"learned AUC (\d\.\d+) beats the default config's (\d\.\d+)", calibrate)
    assert validation
    assert f"learned {validation.group(1)} against the defaults' {validation.group(2)}" in prose
    quoted = re.findall(r"`(signals\.[^`]+)`", section)
    assert len(quoted) == 2
    assert all(" ".join(q.split()) in calibrate for q in quoted)
    learned = re.search(r"ROC AUC (\d\.\d+)", calibrated)
    assert learned and f"reaches {float(learned.group(1)):.2f}" in prose
    assert float(learned.group(1)) > float(auc.group(1)) + 0.1
    assert (tmp_path / "leads.yaml").is_file()
