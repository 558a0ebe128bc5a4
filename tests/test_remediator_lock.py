"""One journal, one writer (issue 9, item 9): a second remediator on it refuses to start.

Two real processes (``python -m remediator``) on one journal file: the second must exit
at once (exit 2) with a one-line message naming the journal and the holder, not serve and
"recover" the first one's running steps.  The lock dies with its holder, so after the
first is killed (SIGKILL: no cleanup ran) a new one starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from .remediator_fixtures import DEAD_VCENTER, remediator_section
from .test_remediator_crash import free_port, launch, wait_up


def write_config(tmp_path: Path, name: str, journal: Path, port: int) -> Path:
    os.environ["VHA_TEST_DEAD_PW"] = "x"
    section = remediator_section(str(journal), listen=f"127.0.0.1:{port}")
    path = tmp_path / name
    path.write_text(
        yaml.safe_dump(
            {
                "vcenters": [DEAD_VCENTER],
                "fault_domains": {"custom_attribute": "HA-FaultDomain"},
                "remediator": section,
            }
        )
    )
    return path


def test_second_remediator_on_one_journal_refuses_to_start(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    first_port, second_port = free_port(), free_port()
    first_cfg = write_config(tmp_path, "first.yaml", journal, first_port)
    second_cfg = write_config(tmp_path, "second.yaml", journal, second_port)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    procs: list[subprocess.Popen[Any]] = []
    try:
        first = launch(first_cfg, first_log)
        procs.append(first)
        wait_up(f"http://127.0.0.1:{first_port}", first, first_log)

        second = launch(second_cfg, second_log)
        procs.append(second)
        code = second.wait(20)
        out = second_log.read_text()
        assert code == 2, out
        lines = [line for line in out.splitlines() if line.strip()]
        refusals = [line for line in lines if "in use by another remediator" in line]
        assert len(refusals) == 1, out
        assert str(journal) in refusals[0] and f"pid {first.pid}" in refusals[0], out
        assert "Traceback" not in out, out
        assert first.poll() is None  # the first one is untouched

        first.send_signal(signal.SIGKILL)
        first.wait(10)
        third = launch(second_cfg, second_log)
        procs.append(third)
        wait_up(f"http://127.0.0.1:{second_port}", third, second_log)
        third.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        assert third.wait(20) == 0
        assert time.monotonic() - t0 < 15
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
