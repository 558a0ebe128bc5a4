"""The demo tells the truth: every URL its banner prints answers 200 with something useful,
it opens without a false alarm, and heartbeat faults show within seconds on the VMs it
suggests (real simulator, exporter, remediator, Prometheus and Alertmanager)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vha.demo.run import Progress, _examples, banner
from vha.demo.stack import Stack, StackOptions, http_get
from vha.demo.view import ReadOnlyView

from .remediator_fixtures import alert, payload

pytestmark = pytest.mark.slow
SIM = {"datacenters": 1, "clusters": 2, "hosts": 3, "vms": 12, "fault_domains": 2}


def wait_until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def demo(sim_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    opts = StackOptions(run_dir=tmp_path_factory.mktemp("demo"), sim=SIM, fast_vm_monitoring=True)
    st = Stack(opts)
    st.start()
    view = ReadOnlyView(st.url("remediator"), st.token, 0).start()
    try:
        assert st.wait_first_scrape()
        yield {"stack": st, "view": view, "started": time.monotonic()}
    finally:
        view.stop()
        st.stop()


def test_every_banner_url_answers_200(demo: dict[str, Any]) -> None:
    lines = banner(demo["stack"], demo["view"])
    text = "\n".join(lines)
    urls = re.findall(r"https?://127\.0\.0\.1:\d+[^\s),]*", text)
    assert len(urls) >= 8, text
    assert "Prometheus 2." in text and "Alertmanager 0." in text
    for url in urls:
        if url.startswith("https://") and url.endswith("/sdk"):
            continue  # the SOAP endpoint, for pyVmomi/govc (checked by the exporter following it)
        if re.fullmatch(r"http://127\.0\.0\.1:\d+", url):
            continue  # the webhook's base URL, named with its token file; POST only
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback
            body = resp.read()
            assert resp.status == 200, url
            assert len(body) > 100, (url, body[:200])
    # The remediator's page through the read-only view, without a token in the browser.
    page = http_get(f"http://127.0.0.1:{demo['view'].port}/").decode()
    assert "<table" in page or "<html" in page.lower()
    # ... and the view refuses anything but its GETs.
    req = urllib.request.Request(f"http://127.0.0.1:{demo['view'].port}/api/v1/alerts", data=b"{}")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(req, timeout=5)  # noqa: S310


def test_no_false_alarm_at_start(demo: dict[str, Any]) -> None:
    st = demo["stack"]
    time.sleep(3)
    names = {a["labels"]["alertname"] for a in st.firing_alerts()}
    assert "VsphereExporterDown" not in names, names
    assert "VsphereVcenterUnreachable" not in names, names


def test_heartbeat_faults_show_within_seconds_on_different_vms(demo: dict[str, Any]) -> None:
    st = demo["stack"]
    examples = "\n".join(_examples(st))
    vm1 = re.search(r"fail-vm-heartbeat (\S+)", examples).group(1)  # type: ignore[union-attr]
    vm2 = re.search(r"fail-app-heartbeat (\S+)", examples).group(1)  # type: ignore[union-attr]
    vm3 = re.search(r"power-off-vm (\S+)", examples).group(1)  # type: ignore[union-attr]
    assert len({vm1, vm2, vm3}) == 3
    # past the profile's 10 s minimum uptime
    wait_until("10 s of uptime", lambda: time.monotonic() - demo["started"] > 11, 30)
    st.sim.set_vm(vm1, guestHeartbeatStatus="red")
    st.sim.set_vm(vm2, appHeartbeatStatus="appStatusRed")
    t0 = time.monotonic()

    def firing(name: str, vm: str) -> bool:
        return any(
            a["labels"].get("alertname") == name
            and a["labels"].get("vm") == vm
            and a["state"] == "firing"
            for a in st.firing_alerts()
        )

    wait_until("VM heartbeat alert", lambda: firing("VsphereVmHeartbeatFailure", vm1), 20)
    wait_until("app heartbeat alert", lambda: firing("VsphereVmAppHeartbeatFailure", vm2), 20)
    assert time.monotonic() - t0 < 20


def test_narration_names_the_cluster_and_inhibitions(
    demo: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    st = demo["stack"]
    progress = Progress(st)
    hosts = st.sim.inventory()["hosts"]
    cluster = hosts[0]["cluster"]
    # Every host of one cluster fails: a mass failure, which inhibits the per-host alerts.
    for h in [h for h in hosts if h["cluster"] == cluster]:
        st.sim.fail_host(h["name"], das_state="hostDown")
    try:

        def narrated() -> bool:
            progress.poll()
            out = capsys.readouterr().out
            narrated.text += out  # type: ignore[attr-defined]
            return "held back:" in narrated.text and f"cluster {cluster}" in narrated.text  # type: ignore[attr-defined]

        narrated.text = ""  # type: ignore[attr-defined]
        wait_until("inhibition narrated", narrated, 40)
        assert "inhibited by" in narrated.text  # type: ignore[attr-defined]
    finally:
        for h in [h for h in hosts if h["cluster"] == cluster]:
            st.sim.recover_host(h["name"])


def test_narration_says_when_the_remediators_guard_holds_an_action(
    demo: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Two of three hosts of a cluster down: the mass-failure guard holds the restarts, and
    the narration says so with the guard's reason (not only the action's raw state)."""
    st = demo["stack"]
    progress = Progress(st)
    progress.poll()  # what is already there is not news
    capsys.readouterr()
    hosts = [h for h in st.sim.inventory()["hosts"] if h["cluster"] == "DC0_C1"]
    failing = hosts[:2]
    for h in failing:
        st.sim.fail_host(h["name"], das_state="hostDown")
    try:
        # as Alertmanager delivers them (before any inhibiting alert has fired)
        for h in failing:
            post_alert(
                st,
                {
                    "alertname": "VsphereHostDown",
                    "remediation": "restart_host_vms",
                    "vcenter": "vcsim",
                    "host_id": h["moid"],
                    "host": h["name"],
                    "cluster": h["cluster"],
                },
            )

        def narrated() -> bool:
            progress.poll()
            narrated.text += capsys.readouterr().out  # type: ignore[attr-defined]
            return "held by the remediator's guard: " in narrated.text  # type: ignore[attr-defined]

        narrated.text = ""  # type: ignore[attr-defined]
        wait_until("guard hold narrated", narrated, 40)
        line = next(
            ln
            for ln in narrated.text.splitlines()  # type: ignore[attr-defined]
            if "held by the remediator's guard: " in ln
        )
        assert "mass-failure guard" in line, line
        assert "restart_host_vms" in line and "DC0_C1" in line, line
    finally:
        for h in failing:
            st.sim.recover_host(h["name"])


def post_alert(st: Stack, labels: dict[str, str]) -> None:
    """POST one firing alert to the remediator's webhook, with the demo's token."""
    body = payload(alert(labels.pop("remediation"), **labels))
    req = urllib.request.Request(
        f"{st.url('remediator')}/api/v1/alerts",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {st.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        assert resp.status == 200
