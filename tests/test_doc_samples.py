"""Every sample config in the README and docs/ passes `vha check-config --offline`.

A sample is a ```yaml block whose top-level keys are sections of the vha config file
(rules/config.yml overrides and compose files are checked elsewhere).  A person copies these,
so a sample that fails the check is a bug in the docs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vcenter.config import KNOWN_SECTIONS

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def samples() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in re.finditer(r"^( *)```ya?ml\n(.*?)^\1```", text, re.S | re.M):
            indent = len(match.group(1))
            body = "\n".join(line[indent:] for line in match.group(2).splitlines())
            data = yaml.safe_load(body)
            if isinstance(data, dict) and data and set(data) <= KNOWN_SECTIONS:
                line = text[: match.start()].count("\n") + 1
                found.append((f"{doc.relative_to(ROOT)}:{line}", body))
    return found


SAMPLES = samples()


def test_the_readme_and_docs_have_samples() -> None:
    where = {name.split(":")[0] for name, _ in SAMPLES}
    assert {"README.md", "docs/deploy.md", "docs/remediator.md"} <= where, where


@pytest.mark.parametrize(("name", "body"), SAMPLES, ids=[n for n, _ in SAMPLES])
def test_sample_passes_check_config(tmp_path: Path, name: str, body: str) -> None:
    f = tmp_path / "sample.yml"
    f.write_text(body)
    proc = subprocess.run(
        [sys.executable, "-m", "vha.cli", "check-config", "--offline", str(f)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, f"{name}:\n{proc.stderr}"
