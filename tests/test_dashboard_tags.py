"""Tags as template variables (grafana/dashboards_src/tag_vars.py), against a real Prometheus.

The object lists of the host, VM and datastore dashboards are filtered by the picked tag
category and tag; with both at All every object is offered, tagged or not.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from . import dashboard_queries as dq
from .test_report import COMMON, PrometheusProcess, pytestmark  # noqa: F401 - same binaries

VMS = {  # vm -> its tags (category, tag)
    "web-01": [("Env", "prod"), ("Owner", "web")],
    "web-02": [("Env", "test")],
    "db-01": [("Env", "prod")],
    "untagged-01": [],
}


def estate(end: int) -> str:
    lines = ["# TYPE vsphere_vm_info gauge\n"]
    common = ",".join(f'{k}="{v}"' for k, v in COMMON.items())
    times = range(end - 3600, end + 1, 60)
    for i, vm in enumerate(VMS):
        labels = f'vcenter="vc1",vm_id="vm-{i}",vm="{vm}",datacenter="DC0",cluster="C1",host="h1"'
        lines += [f"vsphere_vm_info{{{labels},{common}}} 1 {t}\n" for t in times]
    lines.append("# TYPE vsphere_vm_tag_info gauge\n")
    for i, (vm, tags) in enumerate(VMS.items()):
        for category, tag in tags:
            labels = f'vcenter="vc1",vm_id="vm-{i}",vm="{vm}",category="{category}",tag="{tag}"'
            lines += [f"vsphere_vm_tag_info{{{labels},{common}}} 1 {t}\n" for t in times]
    return "".join(lines) + "# EOF\n"


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    tmp = tmp_path_factory.mktemp("tags")
    (tmp / "estate.om").write_text(estate(int(time.time())))
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", "estate.om", "data"],
        cwd=tmp,
        check=True,
        capture_output=True,
    )
    server = PrometheusProcess(tmp / "data")
    try:
        yield server
    finally:
        server.stop()


def board(uid: str) -> dict[str, Any]:
    return next(d for d in dq.load_dashboards() if d["uid"] == uid)


def offered(prom: PrometheusProcess, uid: str, var: str, **picked: Any) -> list[str]:
    """The values Grafana would offer for ``var``: its query_result, through its regex."""
    spec = next(v for v in board(uid)["templating"]["list"] if v["name"] == var)
    expr = dq.variable_expr(str(spec["definition"]))
    assert expr is not None
    expr = dq.substitute(expr, {**dq.ALL_VARIABLES, **picked})
    regex = re.compile(spec["regex"].strip("/"))
    values = []
    for labels, _ in prom.query(expr):
        line = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        found = regex.search(line)
        assert found, (line, spec["regex"])
        values.append(found.group(1))
    return sorted(values)


def test_all_tags_offers_every_vm_tagged_or_not(prom: PrometheusProcess) -> None:
    assert offered(prom, "vha-vm", "vm") == ["db-01", "untagged-01", "web-01", "web-02"]


def test_a_tag_offers_only_the_vms_carrying_it(prom: PrometheusProcess) -> None:
    assert offered(prom, "vha-vm", "vm", tag_category="Env", tag="prod") == ["db-01", "web-01"]
    assert offered(prom, "vha-vm", "vm", tag="web") == ["web-01"]  # any category
    assert offered(prom, "vha-vm", "vm", tag=["prod", "test"]) == ["db-01", "web-01", "web-02"]
    assert offered(prom, "vha-vm", "vm", tag="nobody") == []


def test_a_category_alone_offers_the_vms_with_any_tag_in_it(prom: PrometheusProcess) -> None:
    assert offered(prom, "vha-vm", "vm", tag_category="Owner") == ["web-01"]
    assert offered(prom, "vha-vm", "vm", tag_category="Env") == ["db-01", "web-01", "web-02"]


def test_the_tag_variables_list_the_categories_and_their_tags(prom: PrometheusProcess) -> None:
    def values(var: str, **picked: Any) -> list[str]:
        spec = next(v for v in board("vha-vm")["templating"]["list"] if v["name"] == var)
        expr = dq.variable_expr(str(spec["definition"]))
        assert expr is not None
        label = "category" if var == "tag_category" else var
        result = prom.query(dq.substitute(expr, {**dq.ALL_VARIABLES, **picked}))
        return sorted({labels[label] for labels, _ in result})

    assert values("tag_category") == ["Env", "Owner"]
    assert values("tag", tag_category="Env") == ["prod", "test"]


def test_the_host_and_datastore_lists_are_valid_queries(prom: PrometheusProcess) -> None:
    """No hosts or datastores in this estate: the queries still parse and run."""
    assert offered(prom, "vha-host", "host", tag_category="Env") == []
    assert offered(prom, "vha-datastore", "datastore") == []
