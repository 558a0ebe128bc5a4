"""What every dashboard shares, built with grafana-foundation-sdk: the data source, the
template variables, the annotations and links, colours, value mappings, field overrides,
the panel kinds the dashboards use and :class:`Board`, which lays panels out.

Panel conventions:

* enum metrics (one series per state, 1 for the current one) become a text column in tables
  (:func:`~.promql.state_label`) and a numeric code with value mappings in state timelines
  (:func:`~.promql.state_code`, :func:`code_map`);
* every query of a multi-query table is aggregated to the same label set (:func:`table`),
  so Grafana's "merge" joins them row by row;
* a panel whose query may legitimately return nothing (no alert firing, no remediation yet)
  says so in its description with :data:`EMPTY_IS_NORMAL`; tests/dashboard_queries.py reads
  that marker so the end-to-end test does not demand data from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from grafana_foundation_sdk.builders import bargauge as sdk_bargauge
from grafana_foundation_sdk.builders import common as sdk_common
from grafana_foundation_sdk.builders import dashboard as sdk
from grafana_foundation_sdk.builders import prometheus as sdk_prometheus
from grafana_foundation_sdk.builders import stat as sdk_stat
from grafana_foundation_sdk.builders import statetimeline as sdk_timeline
from grafana_foundation_sdk.builders import table as sdk_table
from grafana_foundation_sdk.builders import timeseries as sdk_timeseries
from grafana_foundation_sdk.cog import builder as cog
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from .promql import CL, DC, DC_CL, DC_VM_CHOICE, FIRING, VC, VM_CHOICE, m

#: Marker in a panel description: an empty result is expected while all is well.
EMPTY_IS_NORMAL = "No data is normal"

DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["vsphere-ha"]

T = TypeVar("T")


class Extended(cog.Builder[T], Generic[T]):
    """An SDK builder whose JSON gets ``fields`` its builder cannot set (a query variable's
    ``definition``, the Prometheus options of an annotation)."""

    def __init__(self, inner: cog.Builder[T], **fields: object) -> None:
        self.inner, self.fields = inner, fields

    def build(self) -> T:
        model = self.inner.build()
        # The class's own to_json, so building twice (shared variables) does not nest.
        to_json: Callable[[Any], dict[str, object]] = type(model).to_json  # type: ignore[attr-defined]
        setattr(model, "to_json", lambda: {**to_json(model), **self.fields})  # noqa: B010
        return model


# --- colours, thresholds, mappings and overrides ----------------------------------------------

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


def steps(*pairs: tuple[str, float | None]) -> dm.ThresholdsConfig:
    """Absolute thresholds: (colour, from value); the first value is None (-Infinity)."""
    return dm.ThresholdsConfig(
        mode=dm.ThresholdsMode.ABSOLUTE,
        steps=[dm.Threshold(value=v, color=c) for c, v in pairs],
    )


NEUTRAL = steps(("blue", None))
OK_IF_ZERO = steps(("green", None), ("red", 1))
UP_STEPS = steps(("red", None), ("green", 1))
HEADROOM = steps(("red", None), ("green", 0))
USE = steps(("green", None), ("orange", 0.75), ("red", 0.9))
ONE_MASTER = steps(("red", None), ("green", 1), ("red", 2))


class _Thresholds(cog.Builder[dm.ThresholdsConfig]):
    """:func:`steps` as the builder the panel builders take."""

    def __init__(self, config: dm.ThresholdsConfig) -> None:
        self.config = config

    def build(self) -> dm.ThresholdsConfig:
        return self.config


def value_map(options: dict[str, tuple[str, str | None]]) -> list[dm.ValueMapping]:
    """Value mappings: raw value -> (text, colour or None)."""
    results = {
        raw: dm.ValueMappingResult(text=text, color=color, index=i)
        for i, (raw, (text, color)) in enumerate(options.items())
    }
    return [dm.ValueMap(options=results)]


def text_map(colors: dict[str, str]) -> list[dm.ValueMapping]:
    """Colour cells holding a state name."""
    return value_map({s: (s, c) for s, c in colors.items()})


def code_map(colors: dict[str, str]) -> list[dm.ValueMapping]:
    """Value mappings for :func:`~.promql.state_code` series."""
    return value_map({str(i): (s, c) for i, (s, c) in enumerate(colors.items(), 1)})


def bool_map(
    no: str, yes: str, no_color: str = "red", yes_color: str = "green"
) -> list[dm.ValueMapping]:
    return value_map({"0": (no, no_color), "1": (yes, yes_color)})


UP_MAP = bool_map("down", "up")

Override = sdk.DashboardFieldConfigSourceOverrides
Property = tuple[str, Any]


def _override(matcher: str, options: str, props: Sequence[Property]) -> Override:
    return (
        sdk.DashboardFieldConfigSourceOverrides()
        .matcher(dm.MatcherConfig(id_val=matcher, options=options))
        .properties([dm.DynamicConfigValue(id_val=k, value=v) for k, v in props])
    )


def name_colors(colors: dict[str, str]) -> list[Override]:
    """Overrides colouring series whose display name is (or ends with) a state name."""
    return [
        _override(
            "byRegexp",
            f"^(.*[ :])?{re.escape(s)}$",
            [("color", dm.FieldColor(mode=dm.FieldColorModeId.FIXED, fixed_color=c))],
        )
        for s, c in colors.items()
    ]


def column(name: str, *props: Property, regex: bool = False) -> Override:
    """A field override for the column (or series) ``name``."""
    return _override("byRegexp" if regex else "byName", name, props)


def link_to(uid: str, slug: str, var: str) -> Property:
    """A data link from a table cell to another dashboard, keeping vCenter and time range."""
    url = (
        f"/d/{uid}/{slug}?var-vcenter=${{__data.fields.vcenter}}&var-{var}=${{__value.raw}}"
        "&${__url_time_range}"
    )
    return ("links", [{"title": f"Open {slug.replace('-', ' ')}", "url": url}])


HOST_LINK = link_to("vha-host", "vsphere-ha-host-detail", "host")
VM_LINK = link_to("vha-vm", "vsphere-ha-vm-detail", "vm")
CELL_TEXT = ("custom.cellOptions", cm.TableColorTextCellOptions())
CELL_BG = (
    "custom.cellOptions",
    cm.TableColoredBackgroundCellOptions(mode=cm.TableCellBackgroundDisplayMode.BASIC),
)

# --- panels ------------------------------------------------------------------------------------

Target = tuple[str, str]  # (expr, legend)
#: The SDK's builders of the panel kinds the dashboards use.
P = TypeVar(
    "P",
    sdk_stat.Panel,
    sdk_timeseries.Panel,
    sdk_timeline.Panel,
    sdk_bargauge.Panel,
    sdk_table.Panel,
)
Panel = (
    sdk_stat.Panel
    | sdk_timeseries.Panel
    | sdk_timeline.Panel
    | sdk_bargauge.Panel
    | sdk_table.Panel
)


def _targets(targets: Sequence[Target], *, instant: bool, table: bool) -> list[cog.Builder[Any]]:
    out: list[cog.Builder[Any]] = []
    for i, (expr, legend) in enumerate(targets):
        query = (
            sdk_prometheus.Dataquery()
            .datasource(DS)
            .editor_mode(pm.QueryEditorMode.CODE)
            .expr(expr)
            .ref_id(chr(ord("A") + i))
        )
        query = query.instant() if instant else query.range()
        if table:
            query.format(pm.PromQueryFormat.TABLE)
        if legend:
            query.legend_format(legend)
        out.append(query)
    return out


def _panel(
    panel: P,
    title: str,
    description: str,
    targets: list[cog.Builder[Any]],
    overrides: Sequence[Override] | None,
    empty: str | None,
) -> P:
    """The parts every panel kind shares (``panel`` is one of the SDK's panel builders)."""
    if empty:
        description = f"{description} {EMPTY_IS_NORMAL}: {empty}."
    return (
        panel.title(title)
        .description(description)
        .datasource(DS)
        .targets(targets)
        .overrides(list(overrides or []))
    )


def _reduce_last() -> sdk_common.ReduceDataOptions:
    return sdk_common.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


THRESHOLD_COLORS = sdk.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS)


def stat(
    title: str,
    description: str,
    targets: list[Target],
    *,
    unit: str = "none",
    thresholds: dm.ThresholdsConfig = NEUTRAL,
    mappings: list[dm.ValueMapping] | None = None,
    overrides: list[Override] | None = None,
    text_mode: str = "auto",
    color_mode: str = "value",
    decimals: int | None = None,
    empty: str | None = None,
) -> sdk_stat.Panel:
    panel = (
        sdk_stat.Panel()
        .unit(unit)
        .color_scheme(THRESHOLD_COLORS)
        .thresholds(_Thresholds(thresholds))
        .mappings(mappings or [])
        .reduce_options(_reduce_last())
        .color_mode(cm.BigValueColorMode(color_mode))
        .graph_mode(cm.BigValueGraphMode.NONE)
        .justify_mode(cm.BigValueJustifyMode.AUTO)
        .orientation(cm.VizOrientation.AUTO)
        .text_mode(cm.BigValueTextMode(text_mode))
        .wide_layout(True)
        .show_percent_change(False)
    )
    if decimals is not None:
        panel.decimals(decimals)
    targets_sdk = _targets(targets, instant=True, table=False)
    return _panel(panel, title, description, targets_sdk, overrides, empty)


def enum_stat(
    title: str,
    description: str,
    metric: str,
    label: str,
    sel: str,
    who: str,
    colors: dict[str, str],
    empty: str | None = None,
) -> sdk_stat.Panel:
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


def _legend(mode: cm.LegendDisplayMode, calcs: list[str]) -> sdk_common.VizLegendOptions:
    return (
        sdk_common.VizLegendOptions()
        .display_mode(mode)
        .placement(cm.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(calcs)
    )


def _tooltip(mode: cm.TooltipDisplayMode, sort: cm.SortOrder) -> sdk_common.VizTooltipOptions:
    return sdk_common.VizTooltipOptions().mode(mode).sort(sort)


def timeseries(
    title: str,
    description: str,
    targets: list[Target],
    *,
    unit: str = "none",
    stack: bool = False,
    min_zero: bool = True,
    overrides: list[Override] | None = None,
    thresholds: dm.ThresholdsConfig | None = None,
    bars: bool = False,
    empty: str | None = None,
) -> sdk_timeseries.Panel:
    panel = (
        sdk_timeseries.Panel()
        .unit(unit)
        .draw_style(cm.GraphDrawStyle.BARS if bars else cm.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(60 if stack or bars else 10)
        .show_points(cm.VisibilityMode.NEVER)
        .span_nulls(False)
        .line_interpolation(
            cm.LineInterpolation.STEP_AFTER if stack else cm.LineInterpolation.LINEAR
        )
        .stacking(
            sdk_common.StackingConfig()
            .mode(cm.StackingMode.NORMAL if stack else cm.StackingMode.NONE)
            .group("A")
        )
        .color_scheme(sdk.FieldColor().mode(dm.FieldColorModeId.PALETTE_CLASSIC))
        .legend(_legend(cm.LegendDisplayMode.TABLE, ["lastNotNull", "max"]))
        .tooltip(_tooltip(cm.TooltipDisplayMode.MULTI, cm.SortOrder.DESCENDING))
    )
    if min_zero:
        panel.axis_soft_min(0)
    if thresholds:
        panel.thresholds(_Thresholds(thresholds))
        panel.thresholds_style(
            sdk_common.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
        )
    targets_sdk = _targets(targets, instant=False, table=False)
    return _panel(panel, title, description, targets_sdk, overrides, empty)


def timeline(
    title: str,
    description: str,
    targets: list[Target],
    mappings: list[dm.ValueMapping],
    empty: str | None = None,
) -> sdk_timeline.Panel:
    """A state timeline, usually of :func:`~.promql.state_code` series."""
    panel = (
        sdk_timeline.Panel()
        .color_scheme(THRESHOLD_COLORS)
        .thresholds(_Thresholds(NEUTRAL))
        .mappings(mappings)
        .fill_opacity(80)
        .line_width(0)
        .merge_values(True)
        .show_value(cm.VisibilityMode.NEVER)
        .align_value(cm.TimelineValueAlignment.LEFT)
        .row_height(0.8)
        .legend(_legend(cm.LegendDisplayMode.LIST, []))
        .tooltip(_tooltip(cm.TooltipDisplayMode.SINGLE, cm.SortOrder.NONE))
    )
    targets_sdk = _targets(targets, instant=False, table=False)
    return _panel(panel, title, description, targets_sdk, [], empty)


def bargauge(
    title: str,
    description: str,
    targets: list[Target],
    *,
    unit: str = "none",
    thresholds: dm.ThresholdsConfig = NEUTRAL,
    overrides: list[Override] | None = None,
    max_value: float | None = None,
    empty: str | None = None,
) -> sdk_bargauge.Panel:
    panel = (
        sdk_bargauge.Panel()
        .unit(unit)
        .min(0)
        .color_scheme(THRESHOLD_COLORS)
        .thresholds(_Thresholds(thresholds))
        .orientation(cm.VizOrientation.HORIZONTAL)
        .display_mode(cm.BarGaugeDisplayMode.GRADIENT)
        .value_mode(cm.BarGaugeValueMode.COLOR)
        .show_unfilled(True)
        .min_viz_height(16)
        .min_viz_width(8)
        .name_placement(cm.BarGaugeNamePlacement.AUTO)
        .sizing(cm.BarGaugeSizing.AUTO)
        .reduce_options(_reduce_last())
    )
    if max_value is not None:
        panel.max(max_value)
    targets_sdk = _targets(targets, instant=True, table=False)
    return _panel(panel, title, description, targets_sdk, overrides, empty)


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
    overrides: list[Override] | None = None,
    hide: Sequence[str] = (),
    sort: str | None = None,
    desc: bool = False,
    empty: str | None = None,
) -> sdk_table.Panel:
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
    panel = sdk_table.Panel()
    if len(exprs) > 1:
        panel.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    organize = {
        "excludeByName": exclude,
        "renameByName": rename,
        # Grafana orders fields before it renames them: index by the original names.
        "indexByName": {original.get(n, n): i for i, n in enumerate(order)},
    }
    panel.with_transformation(dm.DataTransformerConfig(id_val="organize", options=organize))
    (
        panel.unit("none")
        .color_scheme(THRESHOLD_COLORS)
        .thresholds(_Thresholds(NEUTRAL))
        .align(cm.FieldTextAlignment.AUTO)
        .filterable(True)
        .cell_options(cm.TableAutoCellOptions())
        .show_header(True)
        .cell_height(cm.TableCellHeight.SM)
        .footer(sdk_common.TableFooterOptions().show(False))
    )
    if sort:
        panel.sort_by([sdk_common.TableSortByFieldState().display_name(sort).desc(desc)])
    targets_sdk = _targets([(e, "") for e in exprs], instant=True, table=True)
    return _panel(panel, title, description, targets_sdk, overrides, empty)


# --- variables, annotations, links and the layout ---------------------------------------------


def datasource_var() -> cog.Builder[dm.VariableModel]:
    var = (
        sdk.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(dm.VariableOption(selected=False, text="Prometheus", value="prometheus"))
        .hide(dm.VariableHide.DONT_HIDE)
        .include_all(False)
        .multi(False)
        .regex("")
    )
    # The SDK's datasource variable builder sets neither; Grafana lists the data sources on load.
    return Extended(var, options=[], refresh=dm.VariableRefresh.ON_DASHBOARD_LOAD)


def multi_var(
    name: str, label: str, query: str, *, include_all: bool, regex: str = ""
) -> sdk.QueryVariable:
    """The multi-value query variable every template variable here starts from (refreshed
    with the time range, sorted); callers add All's value and the current selection."""
    return (
        sdk.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(include_all)
        .hide(dm.VariableHide.DONT_HIDE)
        .options([])
        .regex(regex)
    )


ALL = dm.VariableOption(selected=True, text=["All"], value=["$__all"])


def query_var(
    name: str, label: str, metric: str, sel: str, *, include_all: bool = True
) -> cog.Builder[dm.VariableModel]:
    """A multi-value variable from ``label_values(metric{sel}, name)``; All is ``.*``."""
    query = f"label_values({m(metric, sel)}, {name})"
    var = multi_var(name, label, query, include_all=include_all)
    if include_all:
        var.all_value(".*")
        var.current(ALL)
    # The query Grafana's variable editor shows; the SDK's variable model has no field for it.
    return Extended(var, definition=query)


VAR_VCENTER = query_var("vcenter", "vCenter", "vsphere_up", "")
VAR_CLUSTER = query_var("cluster", "Cluster", "vsphere_cluster_info", VC)
VAR_HOST_ALL = query_var("host", "Host", "vsphere_host_info", CL)
VAR_HOST_ONE = query_var("host", "Host", "vsphere_host_info", CL, include_all=False)
VAR_VM_ONE = query_var("vm", "VM", "vsphere_vm_info", VM_CHOICE, include_all=False)
VAR_VM_ALL = query_var("vm", "VM", "vsphere_vm_info", VM_CHOICE)
# Chained on a datacenter (issue 13): the detail dashboards and the datastore dashboard.
VAR_DATACENTER = query_var("datacenter", "Datacenter", "vsphere_host_info", VC)
VAR_DATACENTER_DS = query_var("datacenter", "Datacenter", "vsphere_datastore_info", VC)
VAR_CLUSTER_DC = query_var("cluster", "Cluster", "vsphere_cluster_info", DC)
VAR_HOST_ONE_DC = query_var("host", "Host", "vsphere_host_info", DC_CL, include_all=False)
VAR_HOST_ALL_DC = query_var("host", "Host", "vsphere_host_info", DC_CL)
VAR_VM_ONE_DC = query_var("vm", "VM", "vsphere_vm_info", DC_VM_CHOICE, include_all=False)
VAR_DATASTORE = query_var("datastore", "Datastore", "vsphere_datastore_info", DC)


def dashboard_annotations() -> list[cog.Builder[dm.AnnotationQuery]]:
    """Grafana's built-in annotations and one marking every firing alert."""
    builtin = (
        sdk.AnnotationQuery()
        .built_in(1)
        .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .name("Annotations & Alerts")
        .type("dashboard")
    )
    alerts = sdk.AnnotationQuery().datasource(DS).enable(True).expr(f"ALERTS{{{FIRING}, {VC}}}")
    alerts = alerts.icon_color("red").name("Firing alerts").hide(False).built_in(0)
    # Options of Prometheus annotations; the SDK's annotation model has no fields for them.
    firing = Extended(
        alerts,
        step="60s",
        tagKeys="alertname,severity",
        textFormat="{{cluster}} {{host}} {{vm}}",
        titleFormat="{{alertname}}",
        useValueForTime=False,
    )
    return [builtin, firing]


def dashboards_link() -> sdk.DashboardLink:
    return (
        sdk.DashboardLink("vSphere HA dashboards")
        .type(dm.DashboardLinkType.DASHBOARDS)
        .as_dropdown(True)
        .icon("external link")
        .include_vars(True)
        .keep_time(True)
        .tags(TAGS)
        .target_blank(False)
    )


class Board(cog.Builder[dm.Dashboard]):
    """A dashboard whose panels are laid out left to right, top to bottom, 24 columns wide.

    Positions and ids are set here rather than by the SDK's own layout, which wraps a line
    only after a panel has overflowed it."""

    def __init__(
        self,
        uid: str,
        title: str,
        description: str,
        variables: list[cog.Builder[dm.VariableModel]],
    ) -> None:
        self.dashboard = (
            sdk.Dashboard(title)
            .uid(uid)
            .description(description)
            .editable()
            .fiscal_year_start_month(0)
            .tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .link(dashboards_link())
            .live_now(False)
            .refresh("30s")
            .tags(TAGS)
            .time("now-6h", "now")
            .timepicker(sdk.TimePicker())
            .timezone("browser")
            .version(1)
            .week_start("")
            .annotations(dashboard_annotations())
            .variables([datasource_var(), *variables])
        )
        self._ids = 0
        self._x = self._y = self._line_h = 0

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _newline(self) -> None:
        self._y += self._line_h
        self._x = self._line_h = 0

    def row(self, title: str) -> None:
        self._newline()
        grid = dm.GridPos(h=1, w=24, x=0, y=self._y)
        row = sdk.Row(title).collapsed(False).grid_pos(grid).id(self._next_id())
        self.dashboard.with_row(row)
        self._y += 1

    def add(self, w: int, h: int, *panels: Panel) -> None:
        for panel in panels:
            if self._x + w > 24:
                self._newline()
            panel.id(self._next_id()).grid_pos(dm.GridPos(h=h, w=w, x=self._x, y=self._y))
            self.dashboard.with_panel(panel)
            self._x += w
            self._line_h = max(self._line_h, h)

    def build(self) -> dm.Dashboard:
        return self.dashboard.build()
