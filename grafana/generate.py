#!/usr/bin/env python3
"""The Grafana dashboards of vsphere-ha-stack, generated from one description.

    python grafana/generate.py           # rewrite grafana/dashboards/*.json
    python grafana/generate.py --check   # exit 1 when a committed dashboard differs

Why generated: the seven dashboards share their variables, selectors and joins (a host's
cluster and fault domain are on ``vsphere_host_info`` only, a VM's placement on
``vsphere_vm_info`` only, see docs/metrics.md), and writing each join once keeps every panel
consistent. tests/test_dashboards.py fails when the committed JSON differs from this output,
so edit this file, never the JSON. docs/dashboards.md describes every panel.

Conventions:

* every query filters on the template variables (``$vcenter``, ``$cluster``, ``$host``,
  ``$vm``); "All" is ``.*``, so standalone hosts (``cluster=""``) are included;
* capacity and failover headroom come from the recording rules in rules/recording.yml, so a
  panel shows exactly the number the capacity alerts test; so do rightsizing and cost;
* thresholds (colours, threshold lines) are read from rules/config.yml (:func:`rules_config`)
  so a panel turns orange where an alert starts counting: after changing that file,
  regenerate the rules and the dashboards;
* enum metrics (one series per state, 1 for the current one) become a text column in tables
  (:func:`state_label`) and a numeric code with value mappings in state timelines
  (:func:`state_code`);
* every query of a multi-query table is aggregated to the same label set (:func:`table`),
  so Grafana's "merge" joins them row by row;
* a panel whose query may legitimately return nothing (no alert firing, no remediation yet)
  says so in its description with :data:`EMPTY_IS_NORMAL`; tests/dashboard_queries.py reads
  that marker so the end-to-end test does not demand data from it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT_DIR = HERE / "dashboards"

#: Marker in a panel description: an empty result is expected while all is well.
EMPTY_IS_NORMAL = "No data is normal"

#: Scrape job names: prometheus/prometheus*.yml and rules/config.yml (watcher) use them too.
EXPORTER_JOB = "vsphere-exporter"
REMEDIATOR_JOB = "vha-remediator"

DS = {"type": "prometheus", "uid": "${datasource}"}
TAGS = ["vsphere-ha"]
SCHEMA_VERSION = 39  # Grafana 10.4 and 11.x


def rules_config(section: str, key: str, default: float) -> float:
    """A number from rules/config.yml (``section.key``), so the dashboards colour at the
    thresholds the alerts and recording rules use; ``default`` when it is not set."""
    try:
        config = yaml.safe_load((ROOT / "rules" / "config.yml").read_text(encoding="utf-8"))
        return float(config[section][key])
    except (OSError, KeyError, TypeError, ValueError):
        return default


def max_utilization() -> float:
    """rules/config.yml capacity.max_utilization: the share of survivors' capacity restarted
    VMs may fill (the capacity alerts' threshold)."""
    return rules_config("capacity", "max_utilization", 0.9)


# --- selectors and joins -------------------------------------------------------------------

VC = 'vcenter=~"$vcenter"'
CL = 'vcenter=~"$vcenter", cluster=~"$cluster"'
IN_CLUSTER = CL + ', cluster!=""'  # clustered objects only
HOST = 'vcenter=~"$vcenter", host=~"$host"'
VM = 'vcenter=~"$vcenter", vm=~"$vm"'
VM_CHOICE = 'vcenter=~"$vcenter", cluster=~"$cluster", host=~"$host"'
CLUSTER_KEY = "vcenter, cluster_id, cluster"
HOST_KEY = "vcenter, host_id, host"
VM_KEY = "vcenter, vm_id, vm"

HA_HEALTHY = "master|connectedToMaster"
CONNECTED = 'state="connected"'
NOT_CONNECTED = 'state!="connected"'
POWERED_ON = 'state="poweredOn"'
POWERED_OFF = 'state="poweredOff"'
RED = 'status="red"'
FIRING = 'alertstate="firing"'
# Matches alertmanager/alertmanager.yml: alerts routed to the remediator.
REMEDIABLE = 'remediation=~"restart_host_vms|restart_vm|reset_vm|evacuate_host"'

_SIMPLE = re.compile(r"^[A-Za-z_:][\w:]*(\{[^{}]*\})?$")


def paren(expr: str) -> str:
    """``expr`` safe to use as an operand (plain selectors stay bare)."""
    return expr if _SIMPLE.match(expr) else f"({expr})"


def m(metric: str, *matchers: str) -> str:
    """``metric{matchers}``."""
    inner = ", ".join(x for x in matchers if x)
    return f"{metric}{{{inner}}}" if inner else metric


def hosts_in(expr: str, info: str = CL) -> str:
    """Host series whose host is in the selected vCenters and clusters."""
    return f"{paren(expr)} and on (vcenter, host_id) {m('vsphere_host_info', info)}"


def vms_in(expr: str, info: str = CL) -> str:
    """VM series whose VM is in the selected vCenters and clusters."""
    return f"{paren(expr)} and on (vcenter, vm_id) {m('vsphere_vm_info', info)}"


def host_labels(expr: str, labels: str, info: str = CL) -> str:
    """Host series with placement labels joined in from ``vsphere_host_info``."""
    info_sel = m("vsphere_host_info", info)
    return f"{paren(expr)} * on (vcenter, host_id) group_left ({labels}) {info_sel}"


def vm_labels(expr: str, labels: str, info: str = CL) -> str:
    """VM series with placement labels joined in from ``vsphere_vm_info``."""
    info_sel = m("vsphere_vm_info", info)
    return f"{paren(expr)} * on (vcenter, vm_id) group_left ({labels}) {info_sel}"


def powered_on(expr: str) -> str:
    """VM series of powered-on VMs only."""
    power = m("vsphere_vm_power_state", VC, POWERED_ON)
    return f"{paren(expr)} and on (vcenter, vm_id) ({power} == 1)"


def state_label(metric: str, label: str, column: str, sel: str) -> str:
    """The current state of an enum metric, copied into the label ``column``."""
    return f'label_replace({m(metric, sel)} == 1, "{column}", "$1", "{label}", "(.*)")'


def problem(expr: str, text: str, src: str = "", regex: str = ".*") -> str:
    """Series of ``expr`` labelled ``problem="text"`` (``$1`` is the ``src`` label's value)."""
    return f'label_replace({expr}, "problem", "{text}", "{src}", "{regex}")'


def state_code(metric: str, label: str, states: Sequence[str], sel: str) -> str:
    """An enum metric as one series whose value is the state's position + 1 (timelines)."""
    parts = [
        f"({m(metric, sel, f'{label}={json.dumps(s)}')} == 1) * {i}"
        for i, s in enumerate(states, 1)
    ]
    return f"max without ({label}) ({' or '.join(parts)})"


def fd_none(expr: str) -> str:
    """Show the empty fault domain as ``(none)``."""
    return f'label_replace({expr}, "fault_domain", "(none)", "fault_domain", "")'


def ratio(num: str, den: str) -> str:
    return f"{paren(num)} / {paren(den)}"


def since(metric_sel: str) -> str:
    return f"time() - {metric_sel}"


def cluster_sum(expr: str) -> str:
    return f"sum by ({CLUSTER_KEY}) ({expr})"


# --- colours and field config ---------------------------------------------------------------

GREY = "#8e8e8e"
HOST_CONNECTION = {"connected": "green", "disconnected": "orange", "notResponding": "red"}
HOST_POWER = {"poweredOn": "green", "poweredOff": "red", "standBy": "blue", "unknown": GREY}
HA_STATE = {
    "master": "purple",
    "connectedToMaster": "green",
    "election": "yellow",
    "fdmUnreachable": "orange",
    "hostDown": "red",
    "networkIsolated": "red",
    "networkPartitionedFromMaster": "orange",
    "initializationError": "red",
    "uninitializationError": "orange",
    "uninitialized": GREY,
}
STATUS = {"green": "green", "yellow": "yellow", "red": "red", "gray": GREY}
VM_POWER = {"poweredOn": "green", "poweredOff": GREY, "suspended": "yellow"}
VM_CONNECTION = {
    "connected": "green",
    "disconnected": "orange",
    "orphaned": "red",
    "inaccessible": "red",
    "invalid": "red",
}
APP_HEARTBEAT = {"green": "green", "red": "red", "gray": GREY}
GUARD_STATE = {"ok": "green", "tripped": "red", "unreachable": "orange"}
RESTART_PRIORITY = ["disabled", "lowest", "low", "medium", "high", "highest"]


def steps(*pairs: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in pairs]}


NEUTRAL = steps(("blue", None))
OK_IF_ZERO = steps(("green", None), ("red", 1))
UP_STEPS = steps(("red", None), ("green", 1))
HEADROOM = steps(("red", None), ("green", 0))
USE = steps(("green", None), ("orange", 0.75), ("red", 0.9))
ONE_MASTER = steps(("red", None), ("green", 1), ("red", 2))


def value_map(options: dict[str, tuple[str, str | None]]) -> list[dict[str, Any]]:
    """Value mappings: raw value -> (text, colour or None)."""
    out = {}
    for i, (raw, (text, color)) in enumerate(options.items()):
        out[raw] = {"text": text, "index": i, **({"color": color} if color else {})}
    return [{"type": "value", "options": out}]


def text_map(colors: dict[str, str]) -> list[dict[str, Any]]:
    """Colour cells holding a state name."""
    return value_map({s: (s, c) for s, c in colors.items()})


def code_map(colors: dict[str, str]) -> list[dict[str, Any]]:
    """Value mappings for :func:`state_code` series."""
    return value_map({str(i): (s, c) for i, (s, c) in enumerate(colors.items(), 1)})


def bool_map(no: str, yes: str, no_color: str = "red", yes_color: str = "green") -> list[Any]:
    return value_map({"0": (no, no_color), "1": (yes, yes_color)})


UP_MAP = bool_map("down", "up")


def name_colors(colors: dict[str, str]) -> list[dict[str, Any]]:
    """Overrides colouring series whose display name is (or ends with) a state name."""
    return [
        {
            "matcher": {"id": "byRegexp", "options": f"^(.*[ :])?{re.escape(s)}$"},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": c}}],
        }
        for s, c in colors.items()
    ]


def column(name: str, *props: tuple[str, Any], regex: bool = False) -> dict[str, Any]:
    """A field override for the column (or series) ``name``."""
    return {
        "matcher": {"id": "byRegexp" if regex else "byName", "options": name},
        "properties": [{"id": k, "value": v} for k, v in props],
    }


def link_to(uid: str, slug: str, var: str) -> tuple[str, list[dict[str, Any]]]:
    """A data link from a table cell to another dashboard, keeping vCenter and time range."""
    url = (
        f"/d/{uid}/{slug}?var-vcenter=${{__data.fields.vcenter}}&var-{var}=${{__value.raw}}"
        "&${__url_time_range}"
    )
    return ("links", [{"title": f"Open {slug.replace('-', ' ')}", "url": url}])


HOST_LINK = link_to("vha-host", "vsphere-ha-host-detail", "host")
VM_LINK = link_to("vha-vm", "vsphere-ha-vm-detail", "vm")
CELL_TEXT = ("custom.cellOptions", {"type": "color-text"})
CELL_BG = ("custom.cellOptions", {"type": "color-background", "mode": "basic"})

# --- panels ------------------------------------------------------------------------------------

Target = tuple[str, str]  # (expr, legend)


def _targets(targets: Sequence[Target], *, instant: bool, table: bool) -> list[dict[str, Any]]:
    out = []
    for i, (expr, legend) in enumerate(targets):
        t: dict[str, Any] = {
            "datasource": DS,
            "editorMode": "code",
            "expr": expr,
            "refId": chr(ord("A") + i),
            "instant": instant,
            "range": not instant,
        }
        if table:
            t["format"] = "table"
        if legend:
            t["legendFormat"] = legend
        out.append(t)
    return out


def _panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    defaults: dict[str, Any],
    overrides: list[Any] | None,
    options: dict[str, Any],
    empty: str | None,
) -> dict[str, Any]:
    if empty:
        description = f"{description} {EMPTY_IS_NORMAL}: {empty}."
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options,
        "targets": targets,
    }


def stat(
    title: str,
    description: str,
    targets: list[Target],
    *,
    unit: str = "none",
    thresholds: dict[str, Any] = NEUTRAL,
    mappings: list[Any] | None = None,
    overrides: list[Any] | None = None,
    text_mode: str = "auto",
    color_mode: str = "value",
    decimals: int | None = None,
    empty: str | None = None,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit,
        "color": {"mode": "thresholds"},
        "thresholds": thresholds,
        "mappings": mappings or [],
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": color_mode,
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": text_mode,
        "wideLayout": True,
        "showPercentChange": False,
    }
    targets_json = _targets(targets, instant=True, table=False)
    return _panel("stat", title, description, targets_json, defaults, overrides, options, empty)


def enum_stat(
    title: str,
    description: str,
    metric: str,
    label: str,
    sel: str,
    who: str,
    colors: dict[str, str],
    empty: str | None = None,
) -> dict[str, Any]:
    """A stat naming the current state of an enum metric, coloured by state."""
    legend = f"{{{{{who}}}}}: {{{{{label}}}}}" if who else f"{{{{{label}}}}}"
    return stat(
        title,
        description,
        [(f"{m(metric, sel)} == 1", legend)],
        text_mode="name",
        color_mode="background",
        overrides=name_colors(colors),
        empty=empty,
    )


def timeseries(
    title: str,
    description: str,
    targets: list[Target],
    *,
    unit: str = "none",
    stack: bool = False,
    min_zero: bool = True,
    overrides: list[Any] | None = None,
    thresholds: dict[str, Any] | None = None,
    bars: bool = False,
    empty: str | None = None,
) -> dict[str, Any]:
    custom: dict[str, Any] = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if stack or bars else 10,
        "showPoints": "never",
        "spanNulls": False,
        "lineInterpolation": "stepAfter" if stack else "linear",
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    if min_zero:
        custom["axisSoftMin"] = 0
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": custom,
        "color": {"mode": "palette-classic"},
    }
    if thresholds:
        defaults["thresholds"] = thresholds
        custom["thresholdsStyle"] = {"mode": "dashed"}
    options = {
        "legend": {
            "displayMode": "table",
            "placement": "bottom",
            "showLegend": True,
            "calcs": ["lastNotNull", "max"],
        },
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    targets_json = _targets(targets, instant=False, table=False)
    return _panel(
        "timeseries", title, description, targets_json, defaults, overrides, options, empty
    )


def timeline(
    title: str,
    description: str,
    targets: list[Target],
    mappings: list[Any],
    empty: str | None = None,
) -> dict[str, Any]:
    """A state timeline, usually of :func:`state_code` series."""
    defaults = {
        "color": {"mode": "thresholds"},
        "thresholds": NEUTRAL,
        "mappings": mappings,
        "custom": {"fillOpacity": 80, "lineWidth": 0},
    }
    options = {
        "mergeValues": True,
        "showValue": "never",
        "alignValue": "left",
        "rowHeight": 0.8,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "single", "sort": "none"},
    }
    targets_json = _targets(targets, instant=False, table=False)
    return _panel("state-timeline", title, description, targets_json, defaults, [], options, empty)


def bargauge(
    title: str,
    description: str,
    targets: list[Target],
    *,
    unit: str = "none",
    thresholds: dict[str, Any] = NEUTRAL,
    overrides: list[Any] | None = None,
    max_value: float | None = None,
    empty: str | None = None,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit,
        "min": 0,
        "color": {"mode": "thresholds"},
        "thresholds": thresholds,
    }
    if max_value is not None:
        defaults["max"] = max_value
    options = {
        "orientation": "horizontal",
        "displayMode": "gradient",
        "valueMode": "color",
        "showUnfilled": True,
        "minVizHeight": 16,
        "minVizWidth": 8,
        "namePlacement": "auto",
        "sizing": "auto",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    }
    targets_json = _targets(targets, instant=True, table=False)
    return _panel("bargauge", title, description, targets_json, defaults, overrides, options, empty)


class Col:
    """One query of a table: its value column (None: the query only contributes labels),
    the labels it adds to the table's key, and how it is aggregated onto the key."""

    def __init__(
        self, expr: str, name: str | None = None, labels: str = "", agg: str = "max"
    ) -> None:
        self.expr, self.name, self.labels, self.agg = expr, name, labels, agg


_HIDDEN = ("Time", "__name__", "cluster_id", "host_id", "vm_id", "datastore_id", "job", "instance")


def table(
    title: str,
    description: str,
    cols: list[Col] | str,
    *,
    key: str = "",
    value: str | None = None,
    order: Sequence[str] = (),
    overrides: list[Any] | None = None,
    hide: Sequence[str] = (),
    sort: str | None = None,
    desc: bool = False,
    empty: str | None = None,
) -> dict[str, Any]:
    """An instant table.

    ``cols`` is one query (a string: its labels are the columns, its value is shown as
    ``value`` or hidden when that is None) or several :class:`Col` queries, each aggregated
    by ``key`` plus its own labels and merged row by row. ``order`` lists the columns shown first.
    """
    if isinstance(cols, str):
        exprs, names = [cols], [value]
        value_fields = ["Value"]
    else:
        assert key, "a multi-query table needs a key"
        exprs = [
            f"{c.agg} by ({key}{', ' + c.labels if c.labels else ''}) ({c.expr})" for c in cols
        ]
        names = [c.name for c in cols]
        value_fields = [f"Value #{chr(ord('A') + i)}" for i in range(len(cols))]
    rename = {f: n for f, n in zip(value_fields, names, strict=True) if n}
    original = {n: f for f, n in rename.items()}
    exclude = {f: True for f, n in zip(value_fields, names, strict=True) if not n}
    exclude.update({h: True for h in (*_HIDDEN, *hide)})
    transformations: list[dict[str, Any]] = []
    if len(exprs) > 1:
        transformations.append({"id": "merge", "options": {}})
    organize = {
        "excludeByName": exclude,
        "renameByName": rename,
        # Grafana orders fields before it renames them: index by the original names.
        "indexByName": {original.get(n, n): i for i, n in enumerate(order)},
    }
    transformations.append({"id": "organize", "options": organize})
    defaults = {
        "unit": "none",
        "color": {"mode": "thresholds"},
        "thresholds": NEUTRAL,
        "custom": {"align": "auto", "filterable": True, "cellOptions": {"type": "auto"}},
    }
    options: dict[str, Any] = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if sort:
        options["sortBy"] = [{"displayName": sort, "desc": desc}]
    targets = _targets([(e, "") for e in exprs], instant=True, table=True)
    panel = _panel("table", title, description, targets, defaults, overrides, options, empty)
    panel["transformations"] = transformations
    return panel


# --- variables and the dashboard builder -----------------------------------------------------


def datasource_var() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {"selected": False, "text": "Prometheus", "value": "prometheus"},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_var(
    name: str, label: str, metric: str, sel: str, *, include_all: bool = True
) -> dict[str, Any]:
    """A multi-value variable from ``label_values(metric{sel}, name)``; All is ``.*``."""
    query = f"label_values({m(metric, sel)}, {name})"
    var: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": query,
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": include_all,
        "current": {},
        "hide": 0,
        "options": [],
        "regex": "",
        "skipUrlSync": False,
    }
    if include_all:
        var["allValue"] = ".*"
        var["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return var


VAR_VCENTER = query_var("vcenter", "vCenter", "vsphere_up", "")
VAR_CLUSTER = query_var("cluster", "Cluster", "vsphere_cluster_info", VC)
VAR_HOST_ALL = query_var("host", "Host", "vsphere_host_info", CL)
VAR_HOST_ONE = query_var("host", "Host", "vsphere_host_info", CL, include_all=False)
VAR_VM_ONE = query_var("vm", "VM", "vsphere_vm_info", VM_CHOICE, include_all=False)
VAR_VM_ALL = query_var("vm", "VM", "vsphere_vm_info", VM_CHOICE)


class Dashboard:
    """Collects panels and lays them out left to right, top to bottom, 24 columns wide."""

    def __init__(
        self, uid: str, title: str, description: str, variables: list[dict[str, Any]]
    ) -> None:
        self.uid, self.title, self.description = uid, title, description
        self.variables = [datasource_var(), *variables]
        self.panels: list[dict[str, Any]] = []
        self._x = self._y = self._line_h = 0

    def _newline(self) -> None:
        self._y += self._line_h
        self._x = self._line_h = 0

    def row(self, title: str) -> None:
        self._newline()
        grid = {"h": 1, "w": 24, "x": 0, "y": self._y}
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": grid,
                "id": len(self.panels) + 1,
                "panels": [],
            }
        )
        self._y += 1

    def add(self, w: int, h: int, *panels: dict[str, Any]) -> None:
        for panel in panels:
            if self._x + w > 24:
                self._newline()
            panel["id"] = len(self.panels) + 1
            panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
            self.panels.append(panel)
            self._x += w
            self._line_h = max(self._line_h, h)

    def to_json(self) -> dict[str, Any]:
        annotations = [
            {
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            },
            {
                "datasource": DS,
                "enable": True,
                "expr": f"ALERTS{{{FIRING}, {VC}}}",
                "iconColor": "red",
                "name": "Firing alerts",
                "step": "60s",
                "tagKeys": "alertname,severity",
                "textFormat": "{{cluster}} {{host}} {{vm}}",
                "titleFormat": "{{alertname}}",
                "useValueForTime": False,
            },
        ]
        links = [
            {
                "asDropdown": True,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": TAGS,
                "targetBlank": False,
                "title": "vSphere HA dashboards",
                "type": "dashboards",
            }
        ]
        return {
            "annotations": {"list": annotations},
            "description": self.description,
            "editable": True,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "id": None,
            "links": links,
            "liveNow": False,
            "panels": self.panels,
            "refresh": "30s",
            "schemaVersion": SCHEMA_VERSION,
            "tags": TAGS,
            "templating": {"list": self.variables},
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
            "weekStart": "",
        }


# --- overview ----------------------------------------------------------------------------------


def host_problems() -> str:
    """One series per (host, problem): everything about a host that is not as it should be."""
    conn = m("vsphere_host_connection_state", VC, NOT_CONNECTED)
    power = m("vsphere_host_power_state", VC, 'state!="poweredOn"')
    ha = m("vsphere_host_ha_state", VC, f'state!~"{HA_HEALTHY}"')
    status = m("vsphere_host_overall_status", VC, 'status=~"red|yellow"')
    parts = [
        problem(f"{conn} == 1", "connection: $1", "state", "(.*)"),
        problem(f"{power} == 1", "power: $1", "state", "(.*)"),
        problem(f"{ha} == 1", "HA agent: $1", "state", "(.*)"),
        problem(f"{status} == 1", "overall status: $1", "status", "(.*)"),
        problem(f"{m('vsphere_host_maintenance_mode', VC)} == 1", "maintenance mode", "host_id"),
        problem(f"{m('vsphere_host_quarantine_mode', VC)} == 1", "quarantine mode", "host_id"),
    ]
    union = f"max by ({HOST_KEY}, problem) ({' or '.join(parts)})"
    return host_labels(union, "cluster, fault_domain")


def vm_problems() -> str:
    """One series per (VM, problem): heartbeats and Tools of powered-on VMs, connection of all."""
    guest = m("vsphere_vm_guest_heartbeat_status", VC, 'status=~"red|yellow"')
    app = m("vsphere_vm_app_heartbeat_status", VC, 'status="red"')
    tools = m("vsphere_vm_tools_running", VC)
    conn = m("vsphere_vm_connection_state", VC, NOT_CONNECTED)
    parts = [
        powered_on(problem(f"{guest} == 1", "guest heartbeat: $1", "status", "(.*)")),
        powered_on(problem(f"{app} == 1", "application heartbeat: red", "vm_id")),
        powered_on(problem(f"{tools} == 0", "VMware Tools not running", "vm_id")),
        problem(f"{conn} == 1", "connection: $1", "state", "(.*)"),
    ]
    union = f"max by ({VM_KEY}, problem) ({' or '.join(paren(p) for p in parts)})"
    return vm_labels(union, "cluster, host, ha_protected, restart_priority")


def overview() -> Dashboard:
    d = Dashboard(
        "vha-overview",
        "vSphere HA / Overview",
        "Clusters, hosts, HA masters, fault domains, VM heartbeats, firing alerts and the "
        "exporter's view of each vCenter.",
        [VAR_VCENTER, VAR_CLUSTER],
    )
    alerts = f"ALERTS{{{FIRING}, {CL}}}"
    connected = m("vsphere_host_connection_state", VC, CONNECTED)
    hosts_not_connected = hosts_in(f"{m('vsphere_host_connection_state', VC, NOT_CONNECTED)} == 1")
    vms_on = vms_in(m("vsphere_vm_power_state", VC, POWERED_ON))
    red_vms = powered_on(vms_in(f"{m('vsphere_vm_guest_heartbeat_status', VC, RED)} == 1"))

    d.row("Summary")
    d.add(
        3,
        4,
        stat(
            "vCenters synced",
            "vCenters the exporter holds a live, synced session to (vsphere_up).",
            [(f"sum({m('vsphere_up', VC)})", "")],
        ),
        stat(
            "vCenters not synced",
            "vCenters without a live, synced session: everything shown for them is stale.",
            [(f"count({m('vsphere_up', VC)} == 0) or vector(0)", "")],
            thresholds=OK_IF_ZERO,
        ),
        stat(
            "Clusters",
            "Clusters in the selection.",
            [(f"count({m('vsphere_cluster_info', CL)}) or vector(0)", "")],
        ),
        stat(
            "Hosts connected",
            "Hosts vCenter reports connected.",
            [
                (
                    f"sum({hosts_in(connected)}) or vector(0)",
                    "",
                )
            ],
        ),
        stat(
            "Hosts not connected",
            "Hosts disconnected or not responding: a host failure, or an isolated vCenter.",
            [(f"count({hosts_not_connected}) or vector(0)", "")],
            thresholds=OK_IF_ZERO,
        ),
        stat(
            "VMs powered on",
            "Powered-on VMs (templates are not exported).",
            [(f"sum({vms_on}) or vector(0)", "")],
        ),
        stat(
            "Guest heartbeat red",
            "Powered-on VMs whose VMware Tools heartbeat is red: VM monitoring resets them.",
            [(f"count({red_vms}) or vector(0)", "")],
            thresholds=OK_IF_ZERO,
        ),
        stat(
            "Firing alerts",
            "Alerts firing in Prometheus for the selection (ALERTS).",
            [(f"count({alerts}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
    )

    d.row("vSphere HA")
    master = m("vsphere_cluster_ha_master_info", CL)
    d.add(
        24,
        8,
        table(
            "Clusters",
            "Every cluster with its vSphere HA configuration, its HA master and its hosts. A "
            "healthy HA cluster has exactly one master; the others are connectedToMaster.",
            [
                Col(m("vsphere_cluster_ha_enabled", CL), "HA"),
                Col(f'label_replace({master}, "master", "$1", "host", "(.*)")', None, "master"),
                Col(m("vsphere_cluster_ha_masters", CL), "HA masters"),
                Col(m("vsphere_cluster_hosts", CL, CONNECTED), "Hosts connected", agg="sum"),
                Col(m("vsphere_cluster_hosts", CL), "Hosts", agg="sum"),
                Col(m("vsphere_cluster_ha_admission_control_enabled", CL), "Admission control"),
                Col(m("vsphere_cluster_ha_failover_level", CL), "Failover level"),
                Col(
                    state_label("vsphere_cluster_ha_vm_monitoring", "mode", "vm_monitoring", CL),
                    None,
                    "vm_monitoring",
                ),
                Col(m("vsphere_cluster_drs_enabled", CL), "DRS"),
            ],
            key=CLUSTER_KEY,
            order=["vcenter", "cluster", "HA", "master", "HA masters", "Hosts connected"],
            overrides=[
                column("HA", ("mappings", bool_map("off", "on")), CELL_TEXT),
                column("HA masters", ("thresholds", ONE_MASTER), CELL_TEXT),
                column("master", HOST_LINK),
                column(
                    "Admission control", ("mappings", bool_map("off", "on", "orange")), CELL_TEXT
                ),
                column("DRS", ("mappings", bool_map("off", "on", "text")), CELL_TEXT),
            ],
            sort="cluster",
        ),
    )
    d.add(
        6,
        8,
        bargauge(
            "Hosts by connection state",
            "Hosts per vCenter connection state.",
            [(f"sum by (state) ({hosts_in(m('vsphere_host_connection_state', VC))})", "{{state}}")],
            overrides=name_colors(HOST_CONNECTION),
        ),
        bargauge(
            "Hosts by HA state",
            "Hosts per vSphere HA agent (FDM) state: one master per cluster, the others "
            "connectedToMaster (slaves).",
            [(f"sum by (state) ({hosts_in(m('vsphere_host_ha_state', VC))})", "{{state}}")],
            overrides=name_colors(HA_STATE),
        ),
    )
    d.add(
        12,
        8,
        timeseries(
            "HA masters per cluster",
            "Hosts reporting HA state master: 0 during an election or an outage, more than 1 "
            "when the cluster is partitioned.",
            [(m("vsphere_cluster_ha_masters", CL), "{{cluster}}")],
            thresholds=ONE_MASTER,
        ),
    )
    d.add(
        24,
        8,
        table(
            "Host problems",
            "Hosts not connected, not powered on, with an HA agent state other than master or "
            "connectedToMaster, a red or yellow overall status, or in maintenance or quarantine "
            "mode. Click a host for its detail.",
            host_problems(),
            order=["vcenter", "cluster", "fault_domain", "host", "problem"],
            overrides=[column("host", HOST_LINK)],
            sort="host",
            empty="every host is connected, powered on and healthy in vSphere HA",
        ),
    )

    d.row("Fault domains")
    fd_key = "vcenter, cluster, fault_domain"

    def per_fd(expr: str, join: Any = host_labels) -> str:
        return fd_none(join(expr, "cluster, fault_domain"))

    d.add(
        12,
        9,
        table(
            "Fault domains",
            "Hosts of each fault domain (hosts that share a power feed, switch or rack; hosts "
            "without one are under (none)): how many are connected, how many are healthy in "
            "vSphere HA, and the powered-on VMs that run there.",
            [
                Col(fd_none(m("vsphere_host_info", CL)), "Hosts", agg="count"),
                Col(
                    per_fd(m("vsphere_host_connection_state", VC, CONNECTED)),
                    "Connected",
                    agg="sum",
                ),
                Col(
                    per_fd(m("vsphere_host_ha_state", VC, f'state=~"{HA_HEALTHY}"')),
                    "HA healthy",
                    agg="sum",
                ),
                Col(
                    per_fd(m("vsphere_vm_power_state", VC, POWERED_ON), vm_labels),
                    "VMs on",
                    agg="sum",
                ),
            ],
            key=fd_key,
            order=["vcenter", "cluster", "fault_domain", "Hosts", "Connected", "HA healthy"],
            overrides=[column("Connected", CELL_TEXT)],
            sort="fault_domain",
        ),
        timeseries(
            "Connected hosts per fault domain",
            "A whole fault domain dropping at once is a power, switch or rack failure.",
            [
                (
                    f"sum by ({fd_key}) ({per_fd(connected)})",
                    "{{cluster}} / {{fault_domain}}",
                )
            ],
        ),
    )

    d.row("Virtual machines")
    guest_on = powered_on(vms_in(m("vsphere_vm_guest_heartbeat_status", VC)))
    app_on = powered_on(vms_in(m("vsphere_vm_app_heartbeat_status", VC)))
    d.add(
        8,
        7,
        bargauge(
            "Powered-on VMs by guest heartbeat",
            "VMware Tools heartbeat of powered-on VMs: red means VM monitoring sees the guest "
            "as failed; gray means no Tools heartbeat.",
            [(f"sum by (status) ({guest_on})", "{{status}}")],
            overrides=name_colors(STATUS),
        ),
        bargauge(
            "Powered-on VMs by application heartbeat",
            "Application heartbeats (vSphere HA application monitoring); gray means the "
            "application does not send them.",
            [(f"sum by (status) ({app_on})", "{{status}}")],
            overrides=name_colors(APP_HEARTBEAT),
        ),
        bargauge(
            "VMs by power state",
            "All VMs by power state.",
            [(f"sum by (state) ({vms_in(m('vsphere_vm_power_state', VC))})", "{{state}}")],
            overrides=name_colors(VM_POWER),
        ),
    )
    d.add(
        12,
        8,
        timeseries(
            "Guest heartbeat over time",
            "Powered-on VMs per guest heartbeat status.",
            [(f"sum by (status) ({guest_on})", "{{status}}")],
            stack=True,
            overrides=name_colors(STATUS),
        ),
        table(
            "VM problems",
            "Powered-on VMs with a red or yellow guest heartbeat, a red application heartbeat "
            "or VMware Tools not running, and VMs not connected. Click a VM for its detail.",
            vm_problems(),
            order=["vcenter", "cluster", "host", "vm", "problem"],
            overrides=[column("vm", VM_LINK), column("host", HOST_LINK)],
            sort="vm",
            empty="every powered-on VM's heartbeats are green",
        ),
    )

    d.row("Alerts")
    d.add(
        16,
        8,
        table(
            "Firing alerts",
            "Alerts firing now (rules/alerts.yml) for the selected vCenters and clusters; "
            "alerts without those labels show only when All is selected.",
            alerts,
            order=["alertname", "severity", "remediation", "vcenter", "cluster", "host", "vm"],
            hide=["alertstate"],
            overrides=[column("vm", VM_LINK), column("host", HOST_LINK)],
            sort="alertname",
            empty="nothing is firing",
        ),
        timeseries(
            "Firing alerts by severity",
            "Firing alerts over time.",
            [(f"count by (severity) ({alerts})", "{{severity}}")],
            stack=True,
            bars=True,
            empty="nothing fired in the time range",
        ),
    )

    d.row("Exporter and vCenter sync")
    last = m("vsphere_sync_last_success_timestamp_seconds", VC)
    d.add(
        12,
        7,
        table(
            "vCenters",
            "Each vCenter the exporter follows: session, age of the last applied update, how "
            "long the last full sync took, and what the vCenter reports about itself.",
            [
                Col(m("vsphere_up", VC), "Synced"),
                Col(since(last), "Last update"),
                Col(m("vsphere_sync_duration_seconds", VC), "Full sync took"),
                Col(m("vsphere_vcenter_info", VC), None, "version, api_version"),
            ],
            key="vcenter",
            order=["vcenter", "Synced", "Last update", "Full sync took", "version"],
            overrides=[
                column("Synced", ("mappings", bool_map("no", "yes")), CELL_BG),
                column(
                    "Last update",
                    ("unit", "s"),
                    ("thresholds", steps(("green", None), ("orange", 60), ("red", 300))),
                    CELL_TEXT,
                ),
                column("Full sync took", ("unit", "s")),
            ],
            sort="vcenter",
        ),
        timeseries(
            "Time since the last update from vCenter",
            "Seconds since the exporter last applied an update (or confirmed an empty wait); "
            "it grows while a vCenter is unreachable.",
            [(since(last), "{{vcenter}}")],
            unit="s",
        ),
    )
    errors = m("vsphere_sync_errors_total", VC)
    d.add(
        8,
        7,
        timeseries(
            "Sync errors",
            "Failed connects, lost sessions, invalidated filters and faults, by reason.",
            [
                (
                    f"sum by (vcenter, reason) (increase({errors}[$__rate_interval]))",
                    "{{vcenter}} {{reason}}",
                )
            ],
            bars=True,
        ),
        timeseries(
            "Resyncs and update sets",
            "Full resyncs (the first sync included) and property-collector update sets "
            "applied per second.",
            [
                (
                    f"increase({m('vsphere_sync_resyncs_total', VC)}[$__rate_interval])",
                    "{{vcenter}} resyncs",
                ),
                (
                    f"rate({m('vsphere_sync_updates_total', VC)}[$__rate_interval])",
                    "{{vcenter}} update sets/s",
                ),
            ],
        ),
        timeseries(
            "Inventory objects",
            "Objects in the exporter's in-memory inventory, by kind.",
            [(m("vsphere_inventory_objects", VC), "{{vcenter}} {{type}}")],
        ),
    )
    d.add(
        12,
        5,
        stat(
            "Scrape targets",
            "Prometheus' view of the exporter and the remediator (up).",
            [(f'up{{job=~"{EXPORTER_JOB}|{REMEDIATOR_JOB}"}}', "{{job}} {{instance}}")],
            mappings=UP_MAP,
            thresholds=UP_STEPS,
            color_mode="background",
        ),
        stat(
            "Exporter",
            "The exporter's version and how long rendering its last /metrics took.",
            [
                ("count by (version) (vsphere_exporter_build_info)", "version {{version}}"),
                ("max(vsphere_scrape_duration_seconds)", "render time"),
            ],
            text_mode="value_and_name",
            overrides=[column("render time", ("unit", "s"))],
        ),
    )
    return d


# --- host detail --------------------------------------------------------------------------------


def host_detail() -> Dashboard:
    d = Dashboard(
        "vha-host",
        "vSphere HA / Host detail",
        "One ESXi host (or several): connection, power and HA agent state, utilisation, "
        "history, and the VMs registered on it.",
        [VAR_VCENTER, VAR_CLUSTER, VAR_HOST_ONE],
    )
    not_ha = "the host's cluster does not have vSphere HA turned on"
    d.row("Status")
    d.add(
        4,
        4,
        enum_stat(
            "Connection",
            "vCenter's connection state of the host.",
            "vsphere_host_connection_state",
            "state",
            HOST,
            "host",
            HOST_CONNECTION,
        ),
        enum_stat(
            "Power",
            "Host power state (standBy: put to sleep by DPM).",
            "vsphere_host_power_state",
            "state",
            HOST,
            "host",
            HOST_POWER,
        ),
        enum_stat(
            "HA agent (FDM)",
            "vSphere HA agent state: master, connectedToMaster (a slave), election, hostDown, "
            "networkIsolated, networkPartitionedFromMaster, ...",
            "vsphere_host_ha_state",
            "state",
            HOST,
            "host",
            HA_STATE,
            empty=not_ha,
        ),
        enum_stat(
            "Overall status",
            "vCenter's overall status of the host (alarms, hardware health).",
            "vsphere_host_overall_status",
            "status",
            HOST,
            "host",
            STATUS,
        ),
        stat(
            "Maintenance / quarantine",
            "Whether the host is in maintenance mode, or in Proactive HA quarantine mode.",
            [
                (m("vsphere_host_maintenance_mode", HOST), "{{host}} maintenance"),
                (m("vsphere_host_quarantine_mode", HOST), "{{host}} quarantine"),
            ],
            mappings=bool_map("no", "yes", "green", "orange"),
            text_mode="value_and_name",
        ),
        stat(
            "Uptime",
            "Time since the host booted.",
            [(since(m("vsphere_host_boot_time_seconds", HOST)), "{{host}}")],
            unit="dtdurations",
        ),
    )
    d.add(
        24,
        5,
        table(
            "Host",
            "Placement and size of the host, and when it was last seen connected.",
            [
                Col(
                    m("vsphere_host_info", HOST), None, "datacenter, cluster, fault_domain, version"
                ),
                Col(m("vsphere_host_cpu_cores", HOST), "Cores"),
                Col(m("vsphere_host_cpu_capacity_hertz", HOST), "CPU"),
                Col(m("vsphere_host_memory_capacity_bytes", HOST), "Memory"),
                Col(m("vsphere_host_vms", HOST), "VMs"),
                Col(
                    since(m("vsphere_host_last_connected_timestamp_seconds", HOST)),
                    "Last seen connected",
                ),
            ],
            key=HOST_KEY,
            order=["vcenter", "host", "datacenter", "cluster", "fault_domain", "version"],
            overrides=[
                column("CPU", ("unit", "hertz")),
                column("Memory", ("unit", "bytes")),
                column(
                    "Last seen connected",
                    ("unit", "s"),
                    ("thresholds", steps(("green", None), ("red", 120))),
                    CELL_TEXT,
                ),
            ],
        ),
    )

    d.row("Utilisation")
    cpu_used, cpu_cap = (
        m("vsphere_host_cpu_usage_hertz", HOST),
        m("vsphere_host_cpu_capacity_hertz", HOST),
    )
    mem_used = m("vsphere_host_memory_usage_bytes", HOST)
    mem_cap = m("vsphere_host_memory_capacity_bytes", HOST)
    d.add(
        12,
        8,
        timeseries(
            "CPU",
            "CPU used (quickStats.overallCpuUsage) against the host's capacity.",
            [(cpu_used, "{{host}} used"), (cpu_cap, "{{host}} capacity")],
            unit="hertz",
        ),
        timeseries(
            "Memory",
            "Memory used (quickStats.overallMemoryUsage) against physical memory.",
            [(mem_used, "{{host}} used"), (mem_cap, "{{host}} capacity")],
            unit="bytes",
        ),
        timeseries(
            "Utilisation",
            "CPU and memory used as a share of capacity.",
            [
                (ratio(cpu_used, cpu_cap), "{{host}} CPU"),
                (ratio(mem_used, mem_cap), "{{host}} memory"),
            ],
            unit="percentunit",
            thresholds=steps(("green", None), ("red", max_utilization())),
        ),
        timeseries(
            "Registered VMs",
            "VMs registered on the host: a drop here and a rise elsewhere is an HA restart or "
            "an evacuation.",
            [(m("vsphere_host_vms", HOST), "{{host}}")],
        ),
    )

    d.row("History")
    conn_code = state_code("vsphere_host_connection_state", "state", list(HOST_CONNECTION), HOST)
    d.add(
        24,
        5,
        timeline(
            "Connection state",
            "Connection state over time.",
            [(conn_code, "{{host}}")],
            code_map(HOST_CONNECTION),
        ),
        timeline(
            "HA agent state",
            "vSphere HA agent (FDM) state over time: elections, isolation and partitions "
            "show here.",
            [(state_code("vsphere_host_ha_state", "state", list(HA_STATE), HOST), "{{host}}")],
            code_map(HA_STATE),
            empty=not_ha,
        ),
        timeline(
            "Power state",
            "Power state over time.",
            [(state_code("vsphere_host_power_state", "state", list(HOST_POWER), HOST), "{{host}}")],
            code_map(HOST_POWER),
        ),
    )

    d.row("VMs on the host")
    on_host = f'{VC}, host=~"$host"'
    d.add(
        24,
        10,
        table(
            "VMs",
            "The VMs registered on the host now, with power state, heartbeats and use. Click a "
            "VM for its detail.",
            [
                Col(
                    m("vsphere_vm_info", on_host),
                    None,
                    "host, cluster, ha_protected, restart_priority",
                ),
                Col(
                    vms_in(state_label("vsphere_vm_power_state", "state", "power", VC), on_host),
                    None,
                    "power",
                ),
                Col(
                    vms_in(
                        state_label(
                            "vsphere_vm_guest_heartbeat_status", "status", "guest_heartbeat", VC
                        ),
                        on_host,
                    ),
                    None,
                    "guest_heartbeat",
                ),
                Col(
                    vms_in(
                        state_label(
                            "vsphere_vm_app_heartbeat_status", "status", "app_heartbeat", VC
                        ),
                        on_host,
                    ),
                    None,
                    "app_heartbeat",
                ),
                Col(vms_in(m("vsphere_vm_cpu_usage_hertz", VC), on_host), "CPU"),
                Col(vms_in(m("vsphere_vm_memory_consumed_bytes", VC), on_host), "Memory consumed"),
            ],
            key=VM_KEY,
            order=["vm", "host", "power", "guest_heartbeat", "app_heartbeat", "ha_protected"],
            hide=["vcenter", "cluster"],
            overrides=[
                column("vm", VM_LINK),
                column("power", ("mappings", text_map(VM_POWER)), CELL_TEXT),
                column("guest_heartbeat", ("mappings", text_map(STATUS)), CELL_TEXT),
                column("app_heartbeat", ("mappings", text_map(APP_HEARTBEAT)), CELL_TEXT),
                column("CPU", ("unit", "hertz")),
                column("Memory consumed", ("unit", "bytes")),
            ],
            sort="vm",
        ),
    )
    return d


# --- VM detail ---------------------------------------------------------------------------------


def vm_detail() -> Dashboard:
    d = Dashboard(
        "vha-vm",
        "vSphere HA / VM detail",
        "One VM (or several): power, VMware Tools and application heartbeats, HA protection, "
        "placement history (vMotion, HA restarts) and resource use.",
        [VAR_VCENTER, VAR_CLUSTER, VAR_HOST_ALL, VAR_VM_ONE],
    )
    priorities = value_map(
        {str(i): (f"priority {p}", None) for i, p in enumerate(RESTART_PRIORITY)}
    )
    d.row("Status")
    d.add(
        4,
        4,
        enum_stat(
            "Power", "VM power state.", "vsphere_vm_power_state", "state", VM, "vm", VM_POWER
        ),
        enum_stat(
            "Guest heartbeat",
            "VMware Tools heartbeat: what vSphere HA VM monitoring watches.",
            "vsphere_vm_guest_heartbeat_status",
            "status",
            VM,
            "vm",
            STATUS,
        ),
        enum_stat(
            "Application heartbeat",
            "Application heartbeat (vSphere HA application monitoring); gray: not used.",
            "vsphere_vm_app_heartbeat_status",
            "status",
            VM,
            "vm",
            APP_HEARTBEAT,
        ),
        stat(
            "VMware Tools",
            "Whether VMware Tools runs in the guest.",
            [(m("vsphere_vm_tools_running", VM), "{{vm}}")],
            mappings=bool_map("not running", "running"),
        ),
        stat(
            "HA protection",
            "Whether this stack protects the VM, and its restart priority.",
            [
                (m("vsphere_vm_ha_protected", VM), "{{vm}} protection"),
                (m("vsphere_vm_restart_priority", VM), "{{vm}} priority"),
            ],
            overrides=[
                column(
                    ".* protection$",
                    ("mappings", bool_map("unprotected", "protected", "orange")),
                    regex=True,
                ),
                column(".* priority$", ("mappings", priorities), regex=True),
            ],
            text_mode="value",
        ),
        stat(
            "Uptime",
            "Time since the last power-on.",
            [(since(m("vsphere_vm_boot_time_seconds", VM)), "{{vm}}")],
            unit="dtdurations",
            empty="the VM is powered off",
        ),
    )
    d.add(
        24,
        5,
        table(
            "Placement",
            "Where the VM runs now and how it is configured. Click the host for its detail.",
            [
                Col(
                    m("vsphere_vm_info", VM),
                    None,
                    "host, cluster, fault_domain, datacenter, guest_os, ha_protected, "
                    "restart_priority",
                ),
                Col(
                    state_label("vsphere_vm_connection_state", "state", "connection", VM),
                    None,
                    "connection",
                ),
                Col(m("vsphere_vm_cpu_count", VM), "vCPUs"),
                Col(m("vsphere_vm_memory_size_bytes", VM), "Memory"),
                Col(m("vsphere_vm_snapshots", VM), "Snapshots"),
                Col(
                    since(m("vsphere_vm_guest_heartbeat_last_green_timestamp_seconds", VM)),
                    "Heartbeat last green",
                ),
            ],
            key=VM_KEY,
            order=["vcenter", "vm", "host", "cluster", "fault_domain", "datacenter", "connection"],
            overrides=[
                column("host", HOST_LINK),
                column("connection", ("mappings", text_map(VM_CONNECTION)), CELL_TEXT),
                column("Memory", ("unit", "bytes")),
                column("Heartbeat last green", ("unit", "s")),
            ],
        ),
    )

    d.row("History")
    here = value_map({"1": ("here", "blue")})
    d.add(
        24,
        5,
        timeline(
            "Host",
            "The host the VM was registered on over time: a change is a vMotion, an "
            "evacuation or an HA restart elsewhere.",
            [(m("vsphere_vm_info", VM), "{{vm}} on {{host}}")],
            here,
        ),
        timeline(
            "Power state",
            "Power state over time.",
            [(state_code("vsphere_vm_power_state", "state", list(VM_POWER), VM), "{{vm}}")],
            code_map(VM_POWER),
        ),
        timeline(
            "Guest heartbeat",
            "VMware Tools heartbeat over time.",
            [
                (
                    state_code("vsphere_vm_guest_heartbeat_status", "status", list(STATUS), VM),
                    "{{vm}}",
                )
            ],
            code_map(STATUS),
        ),
        timeline(
            "Application heartbeat",
            "Application heartbeat over time.",
            [
                (
                    state_code(
                        "vsphere_vm_app_heartbeat_status", "status", list(APP_HEARTBEAT), VM
                    ),
                    "{{vm}}",
                )
            ],
            code_map(APP_HEARTBEAT),
        ),
    )

    d.row("Resources")
    d.add(
        8,
        8,
        timeseries(
            "CPU",
            "CPU used and reserved (reservations count in HA admission control).",
            [
                (m("vsphere_vm_cpu_usage_hertz", VM), "{{vm}} used"),
                (m("vsphere_vm_cpu_reservation_hertz", VM), "{{vm}} reserved"),
            ],
            unit="hertz",
        ),
        timeseries(
            "Memory",
            "Guest active memory, host memory consumed, configured size and reservation.",
            [
                (m("vsphere_vm_memory_usage_bytes", VM), "{{vm}} active"),
                (m("vsphere_vm_memory_consumed_bytes", VM), "{{vm}} consumed"),
                (m("vsphere_vm_memory_size_bytes", VM), "{{vm}} configured"),
                (m("vsphere_vm_memory_reservation_bytes", VM), "{{vm}} reserved"),
            ],
            unit="bytes",
        ),
        timeseries(
            "Storage",
            "Storage the VM's files take.",
            [(m("vsphere_vm_storage_committed_bytes", VM), "{{vm}}")],
            unit="bytes",
        ),
    )
    d.add(
        8,
        6,
        stat(
            "Oldest snapshot",
            "Age of the VM's oldest snapshot; old snapshots slow the VM and fill datastores.",
            [(since(m("vsphere_vm_snapshot_oldest_timestamp_seconds", VM)), "{{vm}}")],
            unit="dtdurations",
            thresholds=steps(("green", None), ("orange", 3 * 86400), ("red", 7 * 86400)),
            empty="the VM has no snapshot",
        ),
    )
    d.add(
        16,
        6,
        table(
            "Firing alerts for the VM",
            "Alerts firing now that name the VM.",
            f"ALERTS{{{FIRING}, {VM}}}",
            order=["alertname", "severity", "remediation", "vm", "host", "cluster"],
            hide=["alertstate"],
            sort="alertname",
            empty="nothing is firing for the VM",
        ),
    )
    return d


# --- capacity and headroom ---------------------------------------------------------------------


def rule(name: str, sel: str = IN_CLUSTER) -> str:
    """A recording rule of rules/recording.yml, filtered on the variables."""
    return m(name, sel)


def capacity() -> Dashboard:
    d = Dashboard(
        "vha-capacity",
        "vSphere HA / Capacity and headroom",
        "Cluster CPU and memory capacity against use, N+1 failover headroom (could the "
        "cluster restart the VMs of its largest host, or of its largest fault domain?), host "
        "balance, efficiency and datastores. Capacity and headroom come from the recording "
        "rules in rules/recording.yml, the numbers the capacity alerts test.",
        [VAR_VCENTER, VAR_CLUSTER],
    )
    limit = max_utilization()

    d.row("Cluster capacity")
    for res, unit, total, effective in (
        (
            "cpu",
            "hertz",
            "vsphere_cluster_cpu_capacity_hertz",
            "vsphere_cluster_effective_cpu_hertz",
        ),
        (
            "memory",
            "bytes",
            "vsphere_cluster_memory_capacity_bytes",
            "vsphere_cluster_effective_memory_bytes",
        ),
    ):
        base = "host_cpu_capacity_hertz" if res == "cpu" else "host_memory_capacity_bytes"
        used = "host_cpu_usage_hertz" if res == "cpu" else "host_memory_usage_bytes"
        d.add(
            12,
            8,
            timeseries(
                "CPU" if res == "cpu" else "Memory",
                f"Total {res} of all hosts, {res} vCenter counts as available to VMs on healthy "
                f"hosts (effective), capacity of the hosts that are up (connected, powered on, "
                f"not in maintenance), and what those hosts use.",
                [
                    (m(total, IN_CLUSTER), "{{cluster}} total"),
                    (m(effective, IN_CLUSTER), "{{cluster}} effective"),
                    (rule(f"vsphere_cluster:{base}:sum"), "{{cluster}} hosts up"),
                    (rule(f"vsphere_cluster:{used}:sum"), "{{cluster}} used"),
                ],
                unit=unit,
            ),
        )
    d.add(
        12,
        6,
        bargauge(
            "CPU used",
            "CPU the hosts use as a share of the capacity of the hosts that are up.",
            [(rule("vsphere_cluster:cpu_utilization:ratio"), "{{cluster}}")],
            unit="percentunit",
            thresholds=USE,
            max_value=1,
        ),
        bargauge(
            "Memory used",
            "Memory the hosts use as a share of the memory of the hosts that are up.",
            [(rule("vsphere_cluster:memory_utilization:ratio"), "{{cluster}}")],
            unit="percentunit",
            thresholds=USE,
            max_value=1,
        ),
    )

    d.row("Failover headroom (N+1)")
    headroom_cols = [
        ("CPU after largest host", "hertz", "vsphere_cluster:cpu_headroom_hertz:n_plus_1"),
        ("Memory after largest host", "bytes", "vsphere_cluster:memory_headroom_bytes:n_plus_1"),
        (
            "CPU after largest fault domain",
            "hertz",
            "vsphere_cluster:cpu_headroom_hertz:fault_domain",
        ),
        (
            "Memory after largest fault domain",
            "bytes",
            "vsphere_cluster:memory_headroom_bytes:fault_domain",
        ),
    ]
    policy = state_label(
        "vsphere_cluster_ha_admission_control_policy", "policy", "admission_control", IN_CLUSTER
    )
    d.add(
        24,
        8,
        table(
            "Could each cluster restart the VMs of its largest host / fault domain?",
            "Capacity of the hosts that are up, minus the largest host (or the largest fault "
            "domain), minus what the hosts use now. Green: the survivors can take every "
            "restarted VM. Red: the shortfall. Fault-domain columns stay empty without fault "
            "domains. Compare with the HA failover level (host failures the cluster is "
            "configured to tolerate).",
            [
                *[Col(rule(metric), name) for name, _, metric in headroom_cols],
                Col(rule("vsphere_cluster:host_up:sum"), "Hosts up"),
                Col(rule("vsphere_cluster:fault_domains:count"), "Fault domains"),
                Col(m("vsphere_cluster_ha_failover_level", IN_CLUSTER), "Failover level"),
                Col(policy, None, "admission_control"),
            ],
            key=CLUSTER_KEY,
            order=["vcenter", "cluster", *[name for name, _, _ in headroom_cols]],
            overrides=[
                column(name, ("unit", unit), ("thresholds", HEADROOM), CELL_BG)
                for name, unit, _ in headroom_cols
            ],
            sort="cluster",
        ),
    )
    need_thresholds = steps(("green", None), ("orange", limit * 0.9), ("red", limit))
    for res, base, used in (
        ("CPU", "host_cpu_capacity_hertz", "host_cpu_usage_hertz"),
        ("Memory", "host_memory_capacity_bytes", "host_memory_usage_bytes"),
    ):
        res_lower = "cpu" if res == "CPU" else "memory"
        total, use = rule(f"vsphere_cluster:{base}:sum"), rule(f"vsphere_cluster:{used}:sum")
        largest_host = rule(f"vsphere_cluster:{base}:max")
        largest_fd = rule(f"vsphere_cluster:{base.replace('host_', 'fault_domain_', 1)}:max")
        d.add(
            12,
            8,
            timeseries(
                f"{res} the survivors would need",
                f"The {res_lower} the cluster uses as a share of what is left after losing its "
                f"largest host or fault domain. Above {limit:g} (rules/config.yml "
                "capacity.max_utilization) the capacity alerts fire after their delay.",
                [
                    (ratio(use, f"{total} - {largest_host}"), "{{cluster}} without largest host"),
                    (
                        ratio(use, f"{total} - {largest_fd}"),
                        "{{cluster}} without largest fault domain",
                    ),
                ],
                unit="percentunit",
                thresholds=need_thresholds,
            ),
        )

    d.row("Hosts")
    host_cpu = ratio(
        m("vsphere_host_cpu_usage_hertz", VC), m("vsphere_host_cpu_capacity_hertz", VC)
    )
    host_mem = ratio(
        m("vsphere_host_memory_usage_bytes", VC), m("vsphere_host_memory_capacity_bytes", VC)
    )
    d.add(
        12,
        8,
        bargauge(
            "Host CPU utilisation",
            "CPU used as a share of each host's capacity; an unbalanced cluster loses more "
            "when its busiest host fails.",
            [(hosts_in(host_cpu), "{{host}}")],
            unit="percentunit",
            thresholds=USE,
            max_value=1,
        ),
        bargauge(
            "Host memory utilisation",
            "Memory used as a share of each host's physical memory.",
            [(hosts_in(host_mem), "{{host}}")],
            unit="percentunit",
            thresholds=USE,
            max_value=1,
        ),
    )

    d.row("Efficiency")
    vcpus = cluster_sum(
        powered_on(vm_labels(m("vsphere_vm_cpu_count", VC), "cluster_id, cluster", IN_CLUSTER))
    )
    cores = cluster_sum(
        host_labels(m("vsphere_host_cpu_cores", VC), "cluster_id, cluster", IN_CLUSTER)
    )
    vm_mem = cluster_sum(
        powered_on(
            vm_labels(m("vsphere_vm_memory_size_bytes", VC), "cluster_id, cluster", IN_CLUSTER)
        )
    )
    physical = m("vsphere_cluster_memory_capacity_bytes", IN_CLUSTER)
    off = f"({m('vsphere_vm_power_state', VC, POWERED_OFF)} == 1)"
    off_storage = f"{m('vsphere_vm_storage_committed_bytes', VC)} and on (vcenter, vm_id) {off}"
    d.add(
        8,
        7,
        bargauge(
            "vCPUs per physical core",
            "vCPUs of powered-on VMs per physical core: high ratios mean CPU contention, low "
            "ones idle hardware.",
            [(f"{vcpus} / on ({CLUSTER_KEY}) {cores}", "{{cluster}}")],
            thresholds=steps(("blue", None), ("green", 1), ("orange", 4), ("red", 8)),
        ),
        bargauge(
            "Memory configured / physical",
            "Configured memory of powered-on VMs per byte of physical memory: above 100 % the "
            "cluster relies on memory overcommitment.",
            [
                (
                    f"{vm_mem} / on ({CLUSTER_KEY}) {physical}",
                    "{{cluster}}",
                )
            ],
            unit="percentunit",
            thresholds=steps(("green", None), ("orange", 1), ("red", 1.5)),
        ),
        stat(
            "Powered-off VMs",
            "Powered-off VMs and the storage they keep: candidates for clean-up.",
            [
                (f"count({vms_in(off)}) or vector(0)", "VMs"),
                (f"sum({vms_in(off_storage)}) or vector(0)", "storage"),
            ],
            overrides=[column("storage", ("unit", "bytes"))],
            text_mode="value_and_name",
        ),
    )
    for title, metric, name, unit in (
        ("Top 10 VMs by CPU", "vsphere_vm_cpu_usage_hertz", "CPU", "hertz"),
        (
            "Top 10 VMs by memory consumed",
            "vsphere_vm_memory_consumed_bytes",
            "Memory consumed",
            "bytes",
        ),
    ):
        top = f"topk(10, {vm_labels(m(metric, VC), 'cluster, host')})"
        d.add(
            12,
            8,
            table(
                title,
                "The VMs using the most now. Click a VM for its detail.",
                [Col(top, name, "cluster, host")],
                key=VM_KEY,
                order=["vm", "host", "cluster", name],
                hide=["vcenter"],
                overrides=[column(name, ("unit", unit)), column("vm", VM_LINK)],
            ),
        )

    d.row("Datastores")
    d.add(
        24,
        8,
        table(
            "Datastores",
            "Capacity and free space of each datastore (VM files, snapshots, and the "
            "datastores vSphere HA uses for heartbeating). Filtered by vCenter only.",
            [
                Col(m("vsphere_datastore_info", VC), None, "datacenter, type"),
                Col(m("vsphere_datastore_capacity_bytes", VC), "Capacity"),
                Col(m("vsphere_datastore_free_bytes", VC), "Free"),
                Col(m("vsphere_datastore:free:ratio", VC), "Free %"),
                Col(m("vsphere_datastore_accessible", VC), "Accessible"),
                Col(m("vsphere_datastore_vms", VC), "VMs"),
            ],
            key="vcenter, datastore_id, datastore",
            order=["vcenter", "datastore", "datacenter", "type", "Capacity", "Free", "Free %"],
            overrides=[
                column("Capacity", ("unit", "bytes")),
                column("Free", ("unit", "bytes")),
                column(
                    "Free %",
                    ("unit", "percentunit"),
                    ("thresholds", steps(("red", None), ("orange", 0.1), ("green", 0.2))),
                    CELL_TEXT,
                ),
                column("Accessible", ("mappings", bool_map("no", "yes")), CELL_BG),
            ],
            sort="datastore",
        ),
    )
    return d


# --- remediation -------------------------------------------------------------------------------


def remediation() -> Dashboard:
    d = Dashboard(
        "vha-remediation",
        "vSphere HA / Remediation",
        "What the webhook remediator (vha remediator) did and why it held back: actions by "
        "kind and result, their duration, the mass-failure guard, the journal, and the "
        "webhook Alertmanager calls.",
        [VAR_VCENTER, VAR_CLUSTER],
    )
    idle = "the remediator has not acted in the time range"
    guard = f"vha_remediator_guard_tripped{{{CL}}}"
    d.row("State")
    d.add(
        4,
        4,
        stat(
            "Remediator",
            "Whether Prometheus reaches the remediator.",
            [(f'up{{job="{REMEDIATOR_JOB}"}}', "{{instance}}")],
            mappings=UP_MAP,
            thresholds=UP_STEPS,
            color_mode="background",
        ),
        stat(
            "Mode",
            "Dry run: actions are planned and journaled, never sent to vCenter.",
            [("max(vha_remediator_dry_run)", "")],
            mappings=bool_map("live", "dry run", "orange", "blue"),
            color_mode="background",
        ),
        enum_stat(
            "Guard",
            "ok; tripped: a cluster's mass-failure guard holds all work there (too many hosts "
            "failed at once: a partition or a blind watcher is likelier than dead hardware); "
            "unreachable: a vCenter cannot be reached, work on it is held.",
            "vha_remediator_guard_state",
            "state",
            "",
            "",
            GUARD_STATE,
        ),
        stat(
            "vCenters reachable",
            "vCenters the remediator can reach (it holds all work on the others).",
            [(f"sum(vha_remediator_vcenter_up{{{VC}}}) or vector(0)", "")],
        ),
        stat(
            "Journal backlog",
            "Actions pending or running in the journal.",
            [("sum(vha_remediator_journal_backlog)", "")],
            thresholds=steps(("green", None), ("orange", 10), ("red", 50)),
        ),
        stat(
            "Actions",
            "Actions that reached a final state in the time range.",
            [("sum(increase(vha_remediator_actions_total[$__range])) or vector(0)", "")],
            decimals=0,
        ),
    )

    d.row("Actions")
    actions = "vha_remediator_actions_total"
    d.add(
        12,
        8,
        timeseries(
            "Actions by kind and result",
            "Decisions and steps that reached a final state (VM restarts and resets, host "
            "evacuations, ...), per interval.",
            [
                (
                    f"sum by (kind, result) (increase({actions}[$__rate_interval]))",
                    "{{kind}} {{result}}",
                )
            ],
            bars=True,
            stack=True,
            empty=idle,
        ),
        timeseries(
            "Action and decision duration",
            "95th percentile of the time a step spent changing vCenter, and of the "
            "remediator's own time to decide on an alert, by kind.",
            [
                (
                    "histogram_quantile(0.95, sum by (le, kind) "
                    "(rate(vha_remediator_action_duration_seconds_bucket[$__rate_interval])))",
                    "{{kind}} action p95",
                ),
                (
                    "histogram_quantile(0.95, sum by (le, kind) "
                    "(rate(vha_remediator_decision_duration_seconds_bucket[$__rate_interval])))",
                    "{{kind}} decision p95",
                ),
            ],
            unit="s",
            empty=idle,
        ),
    )
    d.add(
        8,
        8,
        table(
            "Actions in the time range",
            "Actions by kind and result over the whole time range.",
            f"sum by (kind, result) (increase({actions}[$__range])) > 0",
            value="Actions",
            order=["kind", "result", "Actions"],
            overrides=[column("Actions", ("decimals", 0))],
            sort="kind",
            empty=idle,
        ),
        bargauge(
            "Journal",
            "Actions in the journal by state.",
            [("sum by (state) (vha_remediator_journal_actions)", "{{state}}")],
        ),
        table(
            "Alerts routed to the remediator",
            "Alerts firing now whose remediation label routes them to the remediator "
            "(alertmanager/alertmanager.yml).",
            f"ALERTS{{{FIRING}, {REMEDIABLE}, {CL}}}",
            order=["alertname", "remediation", "cluster", "host", "vm"],
            hide=["alertstate", "severity"],
            overrides=[column("vm", VM_LINK), column("host", HOST_LINK)],
            sort="alertname",
            empty="no remediable alert is firing",
        ),
    )

    d.row("Webhook, guard and vCenter")
    d.add(
        8,
        8,
        timeseries(
            "Webhook requests by code",
            "Deliveries from Alertmanager per second by HTTP status (401: a wrong token; 503: "
            "the journal could not be written).",
            [
                (
                    "sum by (code) (rate(vha_remediator_webhook_requests_total[$__rate_interval]))",
                    "{{code}}",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "Alerts received",
            "Alerts in webhook deliveries by status (firing, resolved) and what became of them.",
            [
                (
                    "sum by (status, outcome) "
                    "(increase(vha_remediator_alerts_received_total[$__rate_interval]))",
                    "{{status}} {{outcome}}",
                )
            ],
            bars=True,
            stack=True,
            empty="Alertmanager sent nothing in the time range",
        ),
        timeseries(
            "Mass-failure guard",
            "Per cluster: 1 while the guard holds all work, and the hosts seen failing within "
            "the guard window.",
            [
                (guard, "{{cluster}} tripped"),
                (f"vha_remediator_guard_failed_hosts{{{CL}}}", "{{cluster}} failed hosts"),
            ],
            empty="the guard has seen no cluster yet",
        ),
    )
    d.add(
        12,
        7,
        timeseries(
            "vCenter errors",
            "Failed vCenter calls by vCenter and category, per interval.",
            [
                (
                    f"sum by (vcenter, category) "
                    f"(increase(vha_remediator_vcenter_errors_total{{{VC}}}[$__rate_interval]))",
                    "{{vcenter}} {{category}}",
                )
            ],
            bars=True,
            empty="no vCenter call failed",
        ),
        timeseries(
            "Tasks in flight and journal errors",
            "vCenter tasks the remediator runs now, and journal writes that failed.",
            [
                ("sum(vha_remediator_tasks_in_flight)", "tasks in flight"),
                (
                    "sum(increase(vha_remediator_journal_errors_total[$__rate_interval]))",
                    "journal errors",
                ),
            ],
        ),
    )
    return d


# --- performance -------------------------------------------------------------------------------

# Thresholds of the performance panels: those of the performance alerts (rules/config.yml
# performance), so a panel turns orange where an alert would start its `for` clock. Ready and
# co-stop are per vCPU (docs/performance.md), so one scale fits every VM size.
CPU_READY_HIGH = rules_config("performance", "cpu_ready_ratio", 0.05)
COSTOP_HIGH = rules_config("performance", "cpu_costop_ratio", 0.03)
DISK_LATENCY_HIGH = rules_config("performance", "disk_latency_seconds", 0.03)
DROPPED_HIGH = rules_config("performance", "dropped_packets_per_second", 1)
SWAP_IN_HIGH = rules_config("performance", "swap_in_bytes_per_second", 0)
TOP = 10  # series per "top N" panel

READY_STEPS = steps(("green", None), ("orange", CPU_READY_HIGH), ("red", 2 * CPU_READY_HIGH))
COSTOP_STEPS = steps(("green", None), ("orange", COSTOP_HIGH), ("red", 2 * COSTOP_HIGH))
LATENCY_STEPS = steps(
    ("green", None), ("orange", DISK_LATENCY_HIGH), ("red", 2 * DISK_LATENCY_HIGH)
)
SWAP_IN_STEPS = steps(("green", None), ("red", SWAP_IN_HIGH or 1e-9))

# Why a performance panel may be empty: the simulator (and an idle estate) has no series for
# counters that are 0, and a real vCenter reports no disk counters without datastore I/O.
NO_PRESSURE = "no VM is short of memory (the simulator leaves zero-valued counters out)"
NO_DISK = "no host or VM reports datastore I/O (the simulator has no disk counters)"


def host_perf(metric: str, cond: str = "") -> str:
    """A host performance metric of the selected hosts; ``cond`` (``> 0``) applies before the
    join, where PromQL's precedence would otherwise bind it to the info metric."""
    return hosts_in(f"{m(metric, HOST)} {cond}".strip())


def vm_perf(metric: str, cond: str = "") -> str:
    """A VM performance metric of the selected VMs (narrowed by cluster and host)."""
    return vms_in(f"{m(metric, VM)} {cond}".strip(), VM_CHOICE)


def vm_perf_sum(a: str, b: str) -> str:
    """``a + b`` per VM (same labels), of the selected VMs."""
    return vms_in(f"{m(a, VM)} + {m(b, VM)}", VM_CHOICE)


def top(expr: str, k: int = TOP) -> str:
    return f"topk({k}, {expr})"


def only(expr: str, subset: str) -> str:
    """VM series of ``expr`` whose VM is in ``subset``."""
    return f"{paren(expr)} and on (vcenter, vm_id) {paren(subset)}"


def performance() -> Dashboard:
    d = Dashboard(
        "vha-performance",
        "vSphere HA / Performance",
        "vCenter's real-time performance counters of hosts and VMs (docs/performance.md): CPU "
        "usage, ready and co-stop, memory pressure, disk latency and operations, network, "
        "the worst VMs now, and the health of the collector.",
        [VAR_VCENTER, VAR_CLUSTER, VAR_HOST_ALL, VAR_VM_ALL],
    )
    ready = vm_perf("vsphere_vm_cpu_ready_ratio")
    costop = vm_perf("vsphere_vm_cpu_costop_ratio")
    swap_in = vm_perf("vsphere_vm_memory_swap_in_bytes_per_second")
    read_lat = vm_perf("vsphere_vm_disk_read_latency_seconds")
    write_lat = vm_perf("vsphere_vm_disk_write_latency_seconds")

    d.row("Summary")
    high_ready = vm_perf("vsphere_vm_cpu_ready_ratio", f"> {CPU_READY_HIGH:g}")
    swapping = vm_perf("vsphere_vm_memory_swap_in_bytes_per_second", f"> {SWAP_IN_HIGH:g}")
    dropping = host_perf("vsphere_host_network_dropped_packets_per_second", f"> {DROPPED_HIGH:g}")
    slow = f"> {DISK_LATENCY_HIGH:g}"
    slow_disk = vms_in(
        f"{m('vsphere_vm_disk_read_latency_seconds', VM)} {slow} "
        f"or {m('vsphere_vm_disk_write_latency_seconds', VM)} {slow}",
        VM_CHOICE,
    )
    d.add(
        4,
        4,
        stat(
            "Hosts sampled",
            "Selected hosts with a performance sample (connected and powered on).",
            [(f"count({host_perf('vsphere_host_cpu_usage_ratio')}) or vector(0)", "")],
        ),
        stat(
            "VMs sampled",
            "Selected VMs with a performance sample (powered on, performance.vms on).",
            [(f"count({vm_perf('vsphere_vm_cpu_usage_ratio')}) or vector(0)", "")],
        ),
        stat(
            "VMs with high CPU ready",
            f"VMs whose vCPUs waited for a physical CPU more than {CPU_READY_HIGH:.0%} of the "
            "last sample: the host is CPU-contended.",
            [(f"count({high_ready}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            "VMs swapping in",
            "VMs whose memory is being read back from hypervisor swap now: the host ran out "
            "of memory, and the guest waits on disk.",
            [(f"count({swapping}) or vector(0)", "")],
            thresholds=steps(("green", None), ("red", 1)),
        ),
        stat(
            "VMs with slow disks",
            f"VMs whose mean read or write latency is above {DISK_LATENCY_HIGH * 1000:g} ms.",
            [(f"count({slow_disk}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            "Hosts dropping packets",
            f"Hosts that dropped more than {DROPPED_HIGH:g} packets per second (received plus "
            "transmitted) in the last sample.",
            [(f"count({dropping}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
    )

    d.row("CPU")
    d.add(
        12,
        8,
        timeseries(
            f"Host CPU usage (top {TOP})",
            "CPU in use as a share of each host's capacity.",
            [(top(host_perf("vsphere_host_cpu_usage_ratio")), "{{host}}")],
            unit="percentunit",
            thresholds=USE,
        ),
        timeseries(
            f"Host CPU ready (top {TOP})",
            "Share of time the vCPUs of the host's VMs were ready to run but not scheduled, "
            f"averaged per vCPU. Above {CPU_READY_HIGH:.0%} the VMs feel it.",
            [(top(host_perf("vsphere_host_cpu_ready_ratio")), "{{host}}")],
            unit="percentunit",
            thresholds=READY_STEPS,
        ),
        timeseries(
            f"VM CPU ready (top {TOP})",
            "Share of time a vCPU of the VM was ready to run but not scheduled (per vCPU). "
            "High ready with low host usage points to CPU limits or too many vCPUs.",
            [(top(ready), "{{vm}}")],
            unit="percentunit",
            thresholds=READY_STEPS,
        ),
        timeseries(
            f"VM co-stop (top {TOP})",
            "Share of time a vCPU was stopped so the VM's other vCPUs could catch up (per "
            "vCPU): a VM with more vCPUs than it uses. Fewer vCPUs usually help.",
            [(top(costop), "{{vm}}")],
            unit="percentunit",
            thresholds=COSTOP_STEPS,
            empty="no VM is co-stopped (the simulator leaves zero-valued counters out)",
        ),
    )

    d.row("Memory")
    reclaimed = [
        ("balloon", "memory_balloon_bytes"),
        ("swapped", "memory_swapped_bytes"),
        ("compressed", "memory_compressed_bytes"),
    ]
    d.add(
        12,
        8,
        timeseries(
            f"Host memory (top {TOP})",
            "Memory the host's VMs actively use, and memory consumed by the VMs and the "
            "hypervisor.",
            [
                (top(host_perf("vsphere_host_memory_active_bytes")), "{{host}} active"),
                (top(host_perf("vsphere_host_memory_consumed_bytes")), "{{host}} consumed"),
            ],
            unit="bytes",
        ),
        timeseries(
            f"VM active memory (top {TOP})",
            "Memory the guest actively uses, as the hypervisor estimates it (20 s average).",
            [(top(vm_perf("vsphere_vm_memory_active_bytes")), "{{vm}}")],
            unit="bytes",
        ),
        timeseries(
            "Ballooned, swapped and compressed memory",
            "Memory the hypervisor reclaimed from VMs, per host and for the top VMs: "
            "ballooning is mild, compression worse, swapping the worst.",
            [
                *[
                    (host_perf(f"vsphere_host_{metric}"), f"{{{{host}}}} {what}")
                    for what, metric in reclaimed
                ],
                *[
                    (top(vm_perf(f"vsphere_vm_{metric}")), f"VM {{{{vm}}}} {what}")
                    for what, metric in reclaimed
                ],
            ],
            unit="bytes",
            empty=NO_PRESSURE,
        ),
        timeseries(
            "Swap-in rate",
            "Memory read back from hypervisor swap per second, per host and for the top VMs: "
            "the guest waits on disk for its own memory.",
            [
                (host_perf("vsphere_host_memory_swap_in_bytes_per_second"), "{{host}}"),
                (top(swap_in), "VM {{vm}}"),
            ],
            unit="Bps",
            empty=NO_PRESSURE,
        ),
    )

    d.row("Disk")
    d.add(
        12,
        8,
        timeseries(
            "Disk latency",
            "Mean read and write latency over the datastores, weighted by operations (what an "
            f"average I/O waited), per host and for the top {TOP} VMs.",
            [
                (top(host_perf("vsphere_host_disk_read_latency_seconds")), "{{host}} read"),
                (top(host_perf("vsphere_host_disk_write_latency_seconds")), "{{host}} write"),
                (top(read_lat), "VM {{vm}} read"),
                (top(write_lat), "VM {{vm}} write"),
            ],
            unit="s",
            thresholds=LATENCY_STEPS,
            empty=NO_DISK,
        ),
        timeseries(
            "Disk operations",
            f"Read and write operations per second over all datastores, per host and for the "
            f"top {TOP} VMs (reads + writes).",
            [
                (top(host_perf("vsphere_host_disk_reads_per_second")), "{{host}} reads"),
                (top(host_perf("vsphere_host_disk_writes_per_second")), "{{host}} writes"),
                (
                    top(
                        vm_perf_sum(
                            "vsphere_vm_disk_reads_per_second", "vsphere_vm_disk_writes_per_second"
                        )
                    ),
                    "VM {{vm}}",
                ),
            ],
            unit="iops",
            empty=NO_DISK,
        ),
    )

    d.row("Network")
    d.add(
        8,
        8,
        timeseries(
            f"Host network throughput (top {TOP})",
            "Data received and transmitted by each host.",
            [
                (
                    top(host_perf("vsphere_host_network_received_bytes_per_second")),
                    "{{host}} received",
                ),
                (
                    top(host_perf("vsphere_host_network_transmitted_bytes_per_second")),
                    "{{host}} transmitted",
                ),
            ],
            unit="Bps",
        ),
        timeseries(
            f"VM network throughput (top {TOP})",
            "Data received plus transmitted by each VM.",
            [
                (
                    top(
                        vm_perf_sum(
                            "vsphere_vm_network_received_bytes_per_second",
                            "vsphere_vm_network_transmitted_bytes_per_second",
                        )
                    ),
                    "{{vm}}",
                )
            ],
            unit="Bps",
        ),
        timeseries(
            "Dropped packets",
            f"Packets dropped per second (received plus transmitted), per host and for the "
            f"top {TOP} VMs: full receive buffers in the guest, or a saturated uplink.",
            [
                (host_perf("vsphere_host_network_dropped_packets_per_second"), "{{host}}"),
                (top(vm_perf("vsphere_vm_network_dropped_packets_per_second")), "VM {{vm}}"),
            ],
            unit="pps",
            empty="nothing dropped packets (the simulator leaves zero-valued counters out)",
        ),
    )

    d.row("Worst VMs now")
    worst = (
        "group by (vcenter, vm_id, vm) ("
        + " or ".join(top(x) for x in (ready, read_lat, write_lat, swap_in))
        + ")"
    )
    worst_cols = [
        ("CPU ready", ready, "percentunit", READY_STEPS),
        ("Co-stop", costop, "percentunit", COSTOP_STEPS),
        ("Read latency", read_lat, "s", LATENCY_STEPS),
        ("Write latency", write_lat, "s", LATENCY_STEPS),
        ("Swap-in", swap_in, "Bps", SWAP_IN_STEPS),
    ]
    d.add(
        24,
        9,
        table(
            "Worst VMs now",
            f"The top {TOP} VMs by CPU ready, by read latency, by write latency and by swap-in "
            "rate, with all four (and co-stop) side by side. Click a VM for its detail.",
            [
                Col(vm_labels(worst, "cluster, host", VM_CHOICE), None, "cluster, host"),
                *[Col(only(expr, worst), name) for name, expr, _, _ in worst_cols],
            ],
            key=VM_KEY,
            order=["vm", "host", "cluster", *[name for name, _, _, _ in worst_cols]],
            hide=["vcenter"],
            overrides=[
                column("vm", VM_LINK),
                column("host", HOST_LINK),
                *[
                    column(name, ("unit", unit), ("thresholds", th), CELL_TEXT)
                    for name, _, unit, th in worst_cols
                ],
            ],
            sort="CPU ready",
            desc=True,
            empty="latency, swap-in and co-stop cells stay empty where vCenter reports none "
            "(the simulator leaves zero-valued counters out)",
        ),
    )

    d.row("Collector")
    last = m("vsphere_perf_last_success_timestamp_seconds", VC)
    d.add(
        6,
        7,
        timeseries(
            "Collection duration",
            "How long the last collection of every host and VM took; a collection longer "
            "than performance.interval_seconds (20 s) delays the next one.",
            [(m("vsphere_perf_collection_duration_seconds", VC), "{{vcenter}}")],
            unit="s",
        ),
        timeseries(
            "Collection errors",
            "Failed logins, counter look-ups and QueryPerf calls, by reason, per interval; the "
            "collector logs in again at the next round.",
            [
                (
                    "sum by (vcenter, reason) "
                    f"(increase({m('vsphere_perf_errors_total', VC)}[$__rate_interval]))",
                    "{{vcenter}} {{reason}}",
                )
            ],
            bars=True,
        ),
        timeseries(
            "Time since the last successful collection",
            "Seconds since a collection finished without a failed query. Values older than "
            "three intervals (at least 60 s) are no longer served.",
            [(since(last), "{{vcenter}}")],
            unit="s",
            thresholds=steps(("green", None), ("orange", 60), ("red", 300)),
        ),
        timeseries(
            "Sampled objects and counters",
            "Hosts and VMs with a sample in the last collection, and the vSphere counters "
            "resolved on the vCenter.",
            [
                (m("vsphere_perf_entities", VC), "{{vcenter}} {{type}}s"),
                (m("vsphere_perf_counters", VC), "{{vcenter}} counters"),
            ],
        ),
    )
    return d


# --- capacity and cost -------------------------------------------------------------------------

SNAPSHOT_OLD_DAYS = 3  # as vha report --snapshot-days
MONEY = "short"  # amounts in the currency of vsphere_cost_info, shown as 12.3 K
NO_COST = "the exporter's config has no cost: section"
YOUNG = "no VM has a finding, or the rules have less than their window (7 days) of data"
# rules/config.yml rightsizing: the recording rules' settings, quoted in descriptions.
MIN_COVERAGE = rules_config("rightsizing", "min_coverage_ratio", 0.8)
CPU_TARGET = rules_config("rightsizing", "cpu_target_ratio", 0.7)
MEMORY_TARGET = rules_config("rightsizing", "memory_target_ratio", 0.5)


def with_currency(expr: str) -> str:
    """Money series with the ``currency`` label of ``vsphere_cost_info`` joined in."""
    return f"{paren(expr)} * on () group_left (currency) max by (currency) (vsphere_cost_info)"


def vm_rule(name: str) -> str:
    """A per-VM recording rule of the selected vCenters and clusters."""
    return vms_in(m(name, VC))


def cost() -> Dashboard:
    d = Dashboard(
        "vha-cost",
        "vSphere HA / Capacity and cost",
        "Monthly cost and the savings if rightsized, consolidation per cluster (vCPUs per "
        "core, VMs per host, hosts needed and freeable, N+1), and the VMs behind the "
        "savings: idle, oversized, powered off, old snapshots. From the rightsizing and cost "
        "recording rules (docs/performance.md), which judge a window of data (7 days).",
        [VAR_VCENTER, VAR_CLUSTER],
    )
    cost_m, savings = (
        rule("vsphere_cluster:cost_per_month", CL),
        rule("vsphere_cluster:savings_per_month", CL),
    )
    # No finding means nothing to save: 0 wherever there is a cost, not an empty cell.
    saved = f"{savings} or {cost_m} * 0"
    idle, oversized = vm_rule("vsphere_vm:idle"), vm_rule("vsphere_vm:oversized")
    off = vm_rule("vsphere_vm:powered_off:window")
    snapshot_age = since(m("vsphere_vm_snapshot_oldest_timestamp_seconds", VC))
    old_snapshots = vms_in(f"{snapshot_age} > {SNAPSHOT_OLD_DAYS * 86400}")
    failover = rule("vsphere_cluster:failover_capacity:ratio")

    d.row("Summary")
    d.add(
        3,
        4,
        stat(
            "Monthly cost / savings",
            "What the selected VMs cost per month (vCPUs and memory of powered-on VMs, "
            "storage of all), and what rightsizing every finding would save.",
            [
                (with_currency(f"sum({cost_m})"), "cost {{currency}}"),
                (with_currency(f"sum({savings}) or sum({cost_m}) * 0"), "savings {{currency}}"),
            ],
            unit=MONEY,
            text_mode="value_and_name",
            empty=NO_COST,
        ),
        stat(
            "Hosts that could be freed",
            "Hosts up minus the hosts needed to carry the p95 demand with N+1, summed over "
            "the clusters.",
            [(f"sum({rule('vsphere_cluster:hosts:freeable')}) or vector(0)", "")],
            decimals=0,
        ),
        stat(
            "Clusters short of N+1",
            "Clusters whose p95 demand would not fit on the hosts left after losing the "
            "largest one (failover capacity ratio above 1).",
            [(f"count({failover} > 1) or vector(0)", "")],
            thresholds=OK_IF_ZERO,
        ),
        stat(
            "Idle VMs",
            "Powered-on VMs with p95 CPU, network and disk all near zero over the window.",
            [(f"count({idle}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            "Oversized VMs",
            "Powered-on VMs given more vCPUs or memory than their p95 use needs.",
            [(f"count({oversized}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            "Powered off all window",
            "VMs powered off for the whole window: they still hold their storage.",
            [(f"count({off}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            f"Snapshots older than {SNAPSHOT_OLD_DAYS} days",
            "VMs whose oldest snapshot is older than that.",
            [(f"count({old_snapshots}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            "Data coverage",
            "Average share of the window's hours the VMs have performance samples for. VMs "
            f"below rightsizing.min_coverage_ratio ({MIN_COVERAGE:g}) are not judged: a young "
            "estate has no findings. 0 until a VM has samples at an hour of the window.",
            [(f"avg({vm_rule('vsphere_vm:perf_coverage:ratio')}) or vector(0)", "")],
            unit="percentunit",
            thresholds=steps(("orange", None), ("green", MIN_COVERAGE)),
        ),
    )

    d.row("Cost per cluster")
    d.add(
        24,
        7,
        table(
            "Cost and savings per cluster",
            "Monthly cost of each cluster's VMs (standalone hosts under an empty cluster), "
            "what rightsizing its findings would save, and that share of its cost.",
            [
                Col(with_currency(cost_m), "Monthly cost", "currency"),
                Col(saved, "Savings if rightsized"),
                Col(ratio(saved, cost_m), "Savings share"),
            ],
            key=CLUSTER_KEY,
            order=["vcenter", "cluster", "currency", "Monthly cost", "Savings if rightsized"],
            overrides=[
                column("Monthly cost", ("unit", MONEY)),
                column("Savings if rightsized", ("unit", MONEY)),
                column(
                    "Savings share",
                    ("unit", "percentunit"),
                    ("thresholds", steps(("green", None), ("orange", 0.1), ("red", 0.3))),
                    CELL_TEXT,
                ),
            ],
            sort="Monthly cost",
            desc=True,
            empty=NO_COST,
        ),
    )

    d.row("Consolidation and N+1")
    hosts_up = rule("vsphere_cluster:host_up:sum")
    needed = rule("vsphere_cluster:hosts:needed")
    freeable = rule("vsphere_cluster:hosts:freeable")
    vcpus_per_core = rule("vsphere_cluster:vcpus_per_core:ratio")
    vms_per_host = rule("vsphere_cluster:vms_per_host:ratio")
    failover_steps = steps(("green", None), ("orange", 0.9), ("red", 1))
    d.add(
        24,
        7,
        table(
            "Clusters",
            "Per cluster: hosts up (connected, powered on, not in maintenance), hosts needed "
            "to carry the p95 demand at capacity.max_utilization plus the HA failover level "
            "(at least 1), hosts that could be freed, the consolidation ratios, and the N+1 "
            "ratio: p95 demand against the capacity left after losing the largest host (red "
            "above 1: short of N+1).",
            [
                Col(hosts_up, "Hosts up"),
                Col(needed, "Hosts needed"),
                Col(freeable, "Hosts freeable"),
                Col(failover, "N+1 demand"),
                Col(m("vsphere_cluster_ha_failover_level", IN_CLUSTER), "HA failover level"),
                Col(vcpus_per_core, "vCPUs per core"),
                Col(vms_per_host, "VMs per host"),
            ],
            key=CLUSTER_KEY,
            order=["vcenter", "cluster", "Hosts up", "Hosts needed", "Hosts freeable"],
            overrides=[
                column(
                    "N+1 demand",
                    ("unit", "percentunit"),
                    ("thresholds", failover_steps),
                    CELL_BG,
                ),
                column("vCPUs per core", ("decimals", 2)),
                column("VMs per host", ("decimals", 1)),
            ],
            sort="cluster",
        ),
    )
    d.add(
        6,
        8,
        bargauge(
            "vCPUs per physical core",
            "Consolidation ratio: vCPUs of powered-on VMs per physical core of the hosts up. "
            "High ratios mean CPU contention (watch CPU ready), low ones idle hardware.",
            [(vcpus_per_core, "{{cluster}}")],
            thresholds=steps(("blue", None), ("green", 1), ("orange", 4), ("red", 8)),
        ),
        bargauge(
            "VMs per host",
            "Powered-on VMs per host up: how many VMs one host failure restarts.",
            [(vms_per_host, "{{cluster}}")],
        ),
        timeseries(
            "Failover capacity (N+1)",
            "p95 demand (the larger of CPU and memory) as a share of what the hosts left "
            "after losing the largest one may carry at capacity.max_utilization; above 1 the "
            "cluster could not absorb its largest host's failure.",
            [(failover, "{{cluster}}")],
            unit="percentunit",
            thresholds=failover_steps,
        ),
        timeseries(
            "Hosts up and needed",
            "Hosts up against the hosts needed for the p95 demand with N+1; the gap is what "
            "could be freed.",
            [(hosts_up, "{{cluster}} up"), (needed, "{{cluster}} needed")],
        ),
    )

    d.row("Findings")
    top_savings = f"topk(20, {vm_rule('vsphere_vm:savings_per_month')})"
    finding = " or ".join(
        f'label_replace({m(name, VC)}, "finding", "{text}", "", "")'
        for name, text in (
            ("vsphere_vm:idle", "idle"),
            ("vsphere_vm:oversized", "oversized"),
            ("vsphere_vm:powered_off:window", "powered off"),
        )
    )
    size_cols = [
        ("vCPUs", "vsphere_vm_cpu_count"),
        ("Recommended vCPUs", "vsphere_vm:cpu_count:recommended"),
        ("Memory", "vsphere_vm_memory_size_bytes"),
        ("Recommended memory", "vsphere_vm:memory_size_bytes:recommended"),
    ]
    size_overrides = [
        column("Memory", ("unit", "bytes")),
        column("Recommended memory", ("unit", "bytes")),
    ]
    links = [column("vm", VM_LINK), column("host", HOST_LINK)]
    d.add(
        24,
        9,
        table(
            "Top savings",
            "The 20 VMs whose rightsizing saves most per month, with the finding (idle: "
            "remove it; oversized: shrink it to the recommendation; powered off: remove it "
            "and its storage), its size now and the recommended one.",
            [
                Col(
                    vm_labels(with_currency(top_savings), "cluster, host"),
                    "Savings",
                    "cluster, host, currency",
                ),
                Col(only(finding, top_savings), None, "finding"),
                Col(only(vm_rule("vsphere_vm:cost_per_month"), top_savings), "Cost"),
                *[Col(only(m(metric, VC), top_savings), name) for name, metric in size_cols],
                Col(only(m("vsphere_vm_storage_committed_bytes", VC), top_savings), "Storage"),
            ],
            key=VM_KEY,
            order=["vm", "finding", "Savings", "Cost", "currency", "cluster", "host"],
            hide=["vcenter"],
            overrides=[
                column("Savings", ("unit", MONEY)),
                column("Cost", ("unit", MONEY)),
                column("Storage", ("unit", "bytes")),
                *size_overrides,
                *links,
            ],
            sort="Savings",
            desc=True,
            empty=f"{NO_COST}, or {YOUNG}",
        ),
    )
    p95 = [
        ("p95 CPU", "vsphere_vm:cpu_usage_ratio:p95", "percentunit"),
        ("p95 network", "vsphere_vm:network_bytes_per_second:p95", "Bps"),
        ("p95 disk", "vsphere_vm:disk_ops_per_second:p95", "iops"),
    ]
    d.add(
        12,
        9,
        table(
            "Idle VMs",
            "Powered-on VMs whose p95 CPU, network and disk over the window are all below "
            "the idle thresholds (rules/config.yml rightsizing): candidates for removal.",
            [
                Col(vm_labels(idle, "cluster, host"), None, "cluster, host"),
                *[Col(only(m(metric, VC), idle), name) for name, metric, _ in p95],
                Col(only(m("vsphere_vm_cpu_count", VC), idle), "vCPUs"),
                Col(only(m("vsphere_vm_memory_size_bytes", VC), idle), "Memory"),
            ],
            key=VM_KEY,
            order=["vm", "cluster", "host", *[name for name, _, _ in p95]],
            hide=["vcenter"],
            overrides=[
                *[column(name, ("unit", unit)) for name, _, unit in p95],
                *size_overrides,
                *links,
            ],
            sort="vm",
            empty=YOUNG,
        ),
        table(
            "Oversized VMs",
            "Powered-on VMs given more vCPUs or memory than their p95 use needs: the "
            f"recommendation keeps p95 CPU at {CPU_TARGET:.0%} of the vCPUs and p95 active "
            f"memory at {MEMORY_TARGET:.0%} of the memory (rules/config.yml rightsizing).",
            [
                Col(vm_labels(oversized, "cluster, host"), None, "cluster, host"),
                *[Col(only(m(metric, VC), oversized), name) for name, metric in size_cols],
                Col(only(m("vsphere_vm:cpu_usage_ratio:p95", VC), oversized), "p95 CPU"),
                Col(
                    only(m("vsphere_vm:memory_usage_ratio:p95", VC), oversized),
                    "p95 active memory",
                ),
            ],
            key=VM_KEY,
            order=["vm", "cluster", "host", *[name for name, _ in size_cols]],
            hide=["vcenter"],
            overrides=[
                column("p95 CPU", ("unit", "percentunit")),
                column("p95 active memory", ("unit", "percentunit")),
                *size_overrides,
                *links,
            ],
            sort="vm",
            empty=YOUNG,
        ),
        table(
            "Powered-off VMs",
            "VMs powered off at every hour of the window (and present at its start), with "
            "the storage they keep.",
            [
                Col(vm_labels(off, "cluster, host"), None, "cluster, host"),
                Col(only(m("vsphere_vm_storage_committed_bytes", VC), off), "Storage"),
                Col(only(m("vsphere_vm_snapshots", VC), off), "Snapshots"),
            ],
            key=VM_KEY,
            order=["vm", "cluster", "host", "Storage"],
            hide=["vcenter"],
            overrides=[column("Storage", ("unit", "bytes")), *links],
            sort="Storage",
            desc=True,
            empty="no VM was powered off for the whole window",
        ),
        table(
            f"Snapshots older than {SNAPSHOT_OLD_DAYS} days",
            "VMs with an old snapshot: snapshots grow with every write, slow the VM and fill "
            "datastores.",
            [
                Col(vm_labels(old_snapshots, "cluster, host"), "Oldest snapshot", "cluster, host"),
                Col(only(m("vsphere_vm_snapshots", VC), old_snapshots), "Snapshots"),
                Col(only(m("vsphere_vm_storage_committed_bytes", VC), old_snapshots), "Storage"),
            ],
            key=VM_KEY,
            order=["vm", "cluster", "host", "Oldest snapshot"],
            hide=["vcenter"],
            overrides=[
                column(
                    "Oldest snapshot",
                    ("unit", "dtdurations"),
                    ("thresholds", steps(("orange", None), ("red", 7 * 86400))),
                    CELL_TEXT,
                ),
                column("Storage", ("unit", "bytes")),
                *links,
            ],
            sort="Oldest snapshot",
            desc=True,
            empty=f"no snapshot is older than {SNAPSHOT_OLD_DAYS} days",
        ),
    )
    return d


DASHBOARDS = {
    "overview.json": overview,
    "host.json": host_detail,
    "vm.json": vm_detail,
    "capacity.json": capacity,
    "remediation.json": remediation,
    "performance.json": performance,
    "cost.json": cost,
}


def render_all() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        name: json.dumps(build().to_json(), indent=2) + "\n" for name, build in DASHBOARDS.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the Grafana dashboards.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = args.out / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale.append(name)
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python grafana/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
