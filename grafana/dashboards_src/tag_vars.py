"""vSphere tags as template variables: a ``tag_category`` / ``tag`` pair that narrows the
objects a detail dashboard offers (VMs, hosts, datastores) to those carrying the tag.

Why the object list and not every panel: the panels of these dashboards already follow the
picked objects (``vm=~"$vm"``), so filtering the pick list filters every panel with one
query, instead of a join in each of them. The object variable's "All" is the list offered
(no ``.*`` allValue), so "All" after picking a tag means every tagged object.

"All" for both tag variables must mean no filter, and a plain join onto
``vsphere_<kind>_tag_info{category=~".*", tag=~".*"}`` would drop every untagged object.
The fallback branch keeps them only when both variables are All: ``label_replace`` writes the
picked values into a label of ``vector(1)`` and ``and on (pick)`` compares it with the
literal ``.*/.*``, so the condition is a plain PromQL string comparison::

    (info and on (vcenter, <kind>_id) tag_info{category=~"$tag_category", tag=~"$tag"})
    or (info and on () (label_replace(vector(1), "pick", "$tag_category/$tag", "", "")
                        and on (pick) label_replace(vector(1), "pick", ".*/.*", "", "")))

Grafana's ``label_values()`` only takes a series selector, so the object variable is a
``query_result()`` of ``count by (<name>)`` with a regex picking the name out.
"""

from __future__ import annotations

from grafana_foundation_sdk.cog import builder as cog
from grafana_foundation_sdk.models import dashboard as dm

from .common import ALL, Extended, multi_var
from .promql import DC, DC_CL, DC_VM_CHOICE, VC, m

PICKED = 'category=~"$tag_category", tag=~"$tag"'
NO_TAG_PICKED = (
    'label_replace(vector(1), "pick", "$tag_category/$tag", "", "") '
    'and on (pick) label_replace(vector(1), "pick", ".*/.*", "", "")'
)


def tagged(info: str, kind: str) -> str:
    """``info`` (series with vcenter and ``<kind>_id``) for the objects carrying a picked tag;
    every object, tagged or not, while both tag variables are All."""
    tags = m(f"vsphere_{kind}_tag_info", VC, PICKED)
    return f"({info} and on (vcenter, {kind}_id) {tags}) or ({info} and on () ({NO_TAG_PICKED}))"


def tag_vars(kind: str) -> list[cog.Builder[dm.VariableModel]]:
    """``tag_category`` and ``tag`` (chained on it) from the tags of this kind of object."""
    metric = f"vsphere_{kind}_tag_info"
    return [
        _label_var("tag_category", "Tag category", metric, VC, "category"),
        _label_var("tag", "Tag", metric, f'{VC}, category=~"$tag_category"', "tag"),
    ]


def _label_var(
    name: str, label: str, metric: str, sel: str, source: str
) -> cog.Builder[dm.VariableModel]:
    """A multi-value variable ``name`` from ``label_values(metric{sel}, source)``; All is
    ``.*``."""
    query = f"label_values({m(metric, sel)}, {source})"
    var = multi_var(name, label, query, include_all=True).all_value(".*").current(ALL)
    return Extended(var, definition=query)


def tagged_var(
    name: str, label: str, info: str, kind: str, *, include_all: bool
) -> cog.Builder[dm.VariableModel]:
    """The object variable ``name`` listing the objects of ``info`` that carry a picked tag."""
    query = f"query_result(count by ({name}) ({tagged(info, kind)}))"
    var = multi_var(name, label, query, include_all=include_all, regex=f'/{name}="(.*)"/')
    if include_all:  # All = the objects offered (no allValue), so a tag filters the panels
        var.current(ALL)
    return Extended(var, definition=query)


VAR_HOST_TAGGED = tagged_var(
    "host", "Host", m("vsphere_host_info", DC_CL), "host", include_all=False
)
VAR_VM_TAGGED = tagged_var("vm", "VM", m("vsphere_vm_info", DC_VM_CHOICE), "vm", include_all=False)
VAR_DATASTORE_TAGGED = tagged_var(
    "datastore", "Datastore", m("vsphere_datastore_info", DC), "datastore", include_all=True
)
