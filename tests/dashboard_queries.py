"""Read the Grafana dashboards' queries, name their metrics, and run them against Prometheus.

Used by tests/test_dashboards.py (static checks) and by the end-to-end test, which runs every
panel query against a live Prometheus scraping the exporter and the simulator:

    from tests import dashboard_queries as dq

    for dashboard in dq.load_dashboards():
        problems = dq.check_dashboard(prometheus_url, dashboard, dq.ALL_VARIABLES)
        assert not problems, problems

Only the standard library: no Grafana is needed. Template variables are substituted the way
Grafana does (``$var``, ``${var}``, ``${var:format}``, ``[[var]]``), and so are Grafana's
interval variables (``$__rate_interval``, ``$__interval``, ``$__range`` ...).
"""

from __future__ import annotations

import ast
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"

#: Marker grafana/generate.py puts in the description of a panel whose query may return
#: nothing while all is well (no alert firing, no remediation yet).
EMPTY_IS_NORMAL = "No data is normal"

#: Every template variable at "All" (Grafana's allValue is ``.*`` in these dashboards).
ALL_VARIABLES: dict[str, str | Sequence[str]] = {
    "vcenter": ".*",
    "cluster": ".*",
    "host": ".*",
    "vm": ".*",
    "datacenter": ".*",
    "datastore": ".*",
    "tag_category": ".*",
    "tag": ".*",
}

#: Grafana's built-in interval variables as Grafana computes them for a Prometheus scraping
#: every 15 s (prometheus/prometheus.yml) and a 1 h range. Override them through
#: ``variables`` (e.g. ``{"__rate_interval": "4s", "__range": "1m"}``) when the test
#: Prometheus scrapes every second.
BUILTIN_DEFAULTS: dict[str, str] = {
    "__interval": "15s",
    "__interval_ms": "15000",
    "__rate_interval": "1m",
    "__rate_interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}

# --- dashboards and their queries ---------------------------------------------------------


def load_dashboards(directory: Path = DASHBOARD_DIR) -> list[dict[str, Any]]:
    """Every ``*.json`` dashboard in ``directory``, sorted by file name."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))]


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows; rows themselves too."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


@dataclass(frozen=True)
class PanelQuery:
    """One query target of one panel, as written in the dashboard (variables unresolved)."""

    dashboard_uid: str
    panel_id: int
    panel_title: str
    ref_id: str
    expr: str
    may_be_empty: bool


def panel_targets(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """The query targets of every non-row panel (hidden targets excluded)."""
    out = []
    for panel in iter_panels(dashboard):
        if panel.get("type") == "row":
            continue
        quiet = EMPTY_IS_NORMAL in (panel.get("description") or "")
        for target in panel.get("targets", []):
            if target.get("hide"):
                continue
            out.append(
                PanelQuery(
                    dashboard_uid=str(dashboard.get("uid", "")),
                    panel_id=int(panel.get("id", 0)),
                    panel_title=str(panel.get("title", "")),
                    ref_id=str(target.get("refId", "")),
                    expr=str(target.get("expr", "")),
                    may_be_empty=quiet,
                )
            )
    return out


def variable_names(dashboard: Mapping[str, Any]) -> list[str]:
    """Names of the dashboard's template variables, in order."""
    return [str(v["name"]) for v in dashboard.get("templating", {}).get("list", [])]


def variable_queries(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Template variable name -> its query text (``label_values(...)``), query variables only."""
    out = {}
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        if isinstance(query, Mapping):
            query = query.get("query", "")
        out[str(var["name"])] = str(query or var.get("definition", ""))
    return out


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<args>.*)\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\(\s*(?P<expr>.*)\)\s*$", re.S)


def variable_expr(query: str) -> str | None:
    """The PromQL inside a Grafana variable query, or None when it has none.

    ``label_values(metric{...}, label)`` -> ``metric{...}``; ``query_result(expr)`` ->
    ``expr``; ``label_values(label)`` and ``metrics(...)`` -> None.
    """
    match = _LABEL_VALUES.match(query)
    if match:
        args = match.group("args")
        head, sep, _label = args.rpartition(",")
        return head.strip() if sep else None
    match = _QUERY_RESULT.match(query)
    if match:
        return match.group("expr").strip()
    return None


# --- variable substitution ------------------------------------------------------------------

_VAR_REF = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


class UndefinedVariable(KeyError):
    """A query names a variable that neither the dashboard nor the caller defines."""


def format_value(value: str | Sequence[str]) -> str:
    """A variable's value as Grafana writes it into a Prometheus regex matcher.

    A string is used as given (``.*`` for All); a list becomes ``(a|b)`` with each value
    regex-escaped, as Grafana formats a multi-value selection.
    """
    if isinstance(value, str):
        return value
    values = list(value)
    if len(values) == 1:
        return re.escape(values[0])
    return "(" + "|".join(re.escape(v) for v in values) + ")"


def substitute(expr: str, variables: Mapping[str, str | Sequence[str]]) -> str:
    """``expr`` with template and interval variables replaced.

    ``variables`` may override the interval variables of :data:`BUILTIN_DEFAULTS` (keys
    without the ``$``). ``$1``-style references (label_replace replacements) are left alone;
    any other unknown variable raises :class:`UndefinedVariable`.
    """
    values = {**BUILTIN_DEFAULTS, **{k: format_value(v) for k, v in variables.items()}}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in values:
            return values[name]
        if name.isdigit():
            return match.group(0)
        raise UndefinedVariable(f"undefined variable ${name} in {expr!r}")

    return _VAR_REF.sub(replace, expr)


def panel_queries(
    dashboard: Mapping[str, Any], variables: Mapping[str, str | Sequence[str]]
) -> list[str]:
    """Every panel query of ``dashboard``, ready to send to Prometheus."""
    return [substitute(q.expr, variables) for q in panel_targets(dashboard)]


# --- PromQL metric names -----------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\[\[\w+(?::\w+)?\]\]|\$\w+)
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\w*)
  | (?P<ident>[A-Za-z_:][\w:]*)
  | (?P<punct>=~|!~|==|!=|>=|<=|[-+*/%^(){}\[\],=<>@])
    """,
    re.X,
)

# Keywords that are followed by a parenthesised list of label names.
_LABEL_LIST = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Keywords and literals that are never metric names (PromQL keywords are case-insensitive).
_KEYWORDS = _LABEL_LIST | {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
# Aggregation operators: followed by "(" or by a by/without clause (``sum by (x) (...)``).
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip


def tokenize(expr: str) -> list[tuple[str, str]]:
    """PromQL (with Grafana variables) as ``(kind, text)`` tokens, blanks and comments dropped."""
    tokens = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if not match:
            raise ValueError(f"unexpected {expr[pos]!r} at offset {pos} in {expr!r}")
        kind = match.lastgroup or ""
        if kind not in ("ws", "comment"):
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


def _unquote(text: str) -> str:
    """A PromQL string literal's value (backquoted strings are raw)."""
    if text.startswith("`"):
        return text[1:-1]
    return str(ast.literal_eval(text))


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects.

    Skips function and aggregation names, keywords, label names (in ``{...}``, ``by (...)``,
    ``on (...)``, ``group_left (...)``), strings, numbers, durations and Grafana variables;
    ``{__name__="x"}`` yields ``x``.
    """
    tokens = tokenize(expr)
    names: set[str] = set()
    brace = bracket = 0
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "punct":
            brace += {"{": 1, "}": -1}.get(text, 0)
            bracket += {"[": 1, "]": -1}.get(text, 0)
            i += 1
            continue
        if kind != "ident":
            i += 1
            continue
        if brace:
            after = tokens[i + 2] if i + 2 < len(tokens) else ("", "")
            if text == "__name__" and nxt == ("punct", "=") and after[0] == "string":
                names.add(_unquote(after[1]))
            i += 1
            continue
        if bracket:
            i += 1
            continue
        low = text.lower()
        if low in _LABEL_LIST and nxt == ("punct", "("):
            depth = 0
            j = i + 1
            while j < len(tokens):
                if tokens[j] == ("punct", "("):
                    depth += 1
                elif tokens[j] == ("punct", ")"):
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            i = j + 1
            continue
        if low in _AGGREGATIONS and nxt[0] == "ident" and nxt[1].lower() in ("by", "without"):
            i += 1
            continue
        if low in _KEYWORDS or nxt == ("punct", "("):
            i += 1
            continue
        names.add(text)
        i += 1
    return names


def dashboard_metric_names(dashboard: Mapping[str, Any]) -> dict[str, set[str]]:
    """Metric name -> where it is used (``"<uid> #<panel id> <title>"``, variables, annotations)."""
    used: dict[str, set[str]] = {}
    uid = dashboard.get("uid", "")
    for q in panel_targets(dashboard):
        for name in metric_names(q.expr):
            used.setdefault(name, set()).add(f"{uid} #{q.panel_id} {q.panel_title}")
    for var, query in variable_queries(dashboard).items():
        inner = variable_expr(query)
        for name in metric_names(inner) if inner else ():
            used.setdefault(name, set()).add(f"{uid} variable {var}")
    for ann in dashboard.get("annotations", {}).get("list", []):
        for name in metric_names(ann.get("expr", "")):
            used.setdefault(name, set()).add(f"{uid} annotation {ann.get('name')}")
    return used


# --- running queries ----------------------------------------------------------------------------


class QueryError(RuntimeError):
    """Prometheus refused or failed a query (bad PromQL, unreachable server, ...)."""


def instant_query(
    base_url: str, expr: str, *, timeout: float = 10.0, time: float | None = None
) -> list[dict[str, Any]]:
    """Run ``expr`` through ``GET {base_url}/api/v1/query``; the result list.

    Scalars and strings come back as one ``{"metric": {}, "value": [...]}`` element. Raises
    :class:`QueryError` with Prometheus' own message when the query fails.
    """
    params = {"query": expr}
    if time is not None:
        params["time"] = f"{time:.3f}"
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        raise QueryError(f"HTTP {exc.code} for {expr!r}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise QueryError(f"cannot query {base_url}: {exc}") from None
    if body.get("status") != "success":
        raise QueryError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    return list(data["result"])


def query_returns_data(base_url: str, expr: str, *, timeout: float = 10.0) -> bool:
    """True when ``expr`` returns at least one sample now; errors raise :class:`QueryError`."""
    return bool(instant_query(base_url, expr, timeout=timeout))


def check_dashboard(
    base_url: str,
    dashboard: Mapping[str, Any],
    variables: Mapping[str, str | Sequence[str]],
    *,
    require_data: bool = True,
    timeout: float = 10.0,
) -> list[str]:
    """Run every panel and variable query of ``dashboard``; one line per problem.

    A query that Prometheus rejects is always a problem; one that returns nothing is a
    problem when ``require_data`` is set, unless its panel says :data:`EMPTY_IS_NORMAL`.
    """
    problems = []
    uid = dashboard.get("uid", "")
    checks: list[tuple[str, str, bool]] = []
    for var, query in variable_queries(dashboard).items():
        inner = variable_expr(query)
        if inner:
            checks.append((f"{uid} variable {var}", inner, False))
    for q in panel_targets(dashboard):
        where = f"{uid} #{q.panel_id} {q.panel_title!r} {q.ref_id}"
        checks.append((where, q.expr, q.may_be_empty))
    for where, expr, may_be_empty in checks:
        try:
            resolved = substitute(expr, variables)
            result = instant_query(base_url, resolved, timeout=timeout)
        except (QueryError, UndefinedVariable) as exc:
            problems.append(f"{where}: {exc}")
            continue
        if require_data and not may_be_empty and not result:
            problems.append(f"{where}: no data for {resolved}")
    return problems
