"""The simulator binary refuses bad numeric flags up front, in one clear line.

A bad value must not start a simulator that then behaves oddly (``-idle-timeout 0`` would
mean "never close an idle connection" to net/http, the opposite of what the flag models), nor
crash with a Go panic: the binary prints ``vha-sim: <flag> ...`` and exits 2 before binding
anything. Every case runs the real built binary; ``-exit-with-parent`` and a timeout stop a
binary that wrongly starts (the test then fails on the exit code).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

# flag, bad value, what stderr must say about it
BAD = [
    ("-idle-timeout", "0", "-idle-timeout must be > 0"),
    ("-idle-timeout", "-1s", "-idle-timeout must be > 0"),
    ("-idle-timeout", "abc", 'invalid value "abc" for flag -idle-timeout'),
    ("-idle-timeout", "30", 'invalid value "30" for flag -idle-timeout'),  # no unit
    ("-reconcile-interval", "-1s", "-reconcile-interval must be 0 (auto) or >= 10ms"),
    ("-reconcile-interval", "1ms", "-reconcile-interval must be 0 (auto) or >= 10ms"),
    ("-datacenters", "-1", "-datacenters must be >= 0"),
    ("-clusters", "-1", "-clusters must be >= 0"),
    ("-hosts", "-1", "-hosts must be >= 0"),
    ("-hosts", "1.5", 'invalid value "1.5" for flag -hosts'),
    ("-standalone-hosts", "-1", "-standalone-hosts must be >= 0"),
    ("-vms", "-1", "-vms must be >= 0"),
    ("-standalone-vms", "-1", "-standalone-vms must be >= 0"),
    ("-fault-domains", "-1", "-fault-domains must be >= 0"),
    ("-fault-domains", "27", "-fault-domains must be <= 26"),
]


@pytest.mark.parametrize(("flag", "value", "message"), BAD, ids=[f"{f}={v}" for f, v, _ in BAD])
def test_bad_numeric_flag_is_refused_cleanly(
    sim_binary: Path, flag: str, value: str, message: str
) -> None:
    proc = subprocess.run(
        [str(sim_binary), "-exit-with-parent", "-clusters", "0", f"{flag}={value}"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 2, proc
    assert proc.stdout == ""  # no ready line: nothing was started
    assert message in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("vha-sim: ")  # the last line says why
    for crash in ("panic", "goroutine", "Traceback"):
        assert crash not in proc.stderr


def test_good_idle_timeout_starts(sim_binary: Path) -> None:
    """The refusal is for bad values only: a positive duration gives the ready line."""
    proc = subprocess.Popen(
        [str(sim_binary), "-exit-with-parent", "-clusters", "0", "-idle-timeout=250ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert '"sdk_url"' in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
