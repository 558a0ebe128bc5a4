"""A VM's identity across re-registration: what names it besides its own object.

Registering a VM's ``.vmx`` again makes a new managed object; vCenter drops the old moid
from everything that referred to it.  Before the VM leaves the inventory the remediator
captures, and after registering it restores onto the new object:

* its **folder** and **resource pool or vApp** (registration goes straight into them);
* its **DRS VM-group** memberships and the **VM-VM rules** naming it
  (``ClusterConfigInfoEx.group`` / ``.rule``);
* its **DRS and HA per-VM overrides** (``drsVmConfig`` / ``dasVmConfig``);
* its **permissions** set on the VM itself (``AuthorizationManager.RetrieveEntityPermissions``
  with ``inherited`` false, restored with ``SetEntityPermissions``);
* its **custom attributes** (copied by :func:`remediator.actions.register`).

Tags live in the vAPI tagging service: :mod:`remediator.tags` reads and re-attaches them
(remediator/steps/reidentify.py).  Everything captured is
JSON so it is journaled before the VM leaves the inventory.  Blocking pyvmomi, run on the
engine's thread pool.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl

from vcenter.session import describe
from vcenter.soap_values import is_a

from .actions import wait_for
from .live import Session


def _moid(value: Any) -> str:
    return str(value._moId) if value is not None and hasattr(value, "_moId") else ""


def _read(
    session: Session, kind: type, moid: str, props: list[str], plain: bool = False
) -> dict[str, Any]:
    PC = vmodl.query.PropertyCollector
    found = session.retrieve(
        [PC.PropertySpec(type=kind, pathSet=props)],
        [PC.ObjectSpec(obj=session.stub_obj(kind, moid))],
        plain=plain,
    )
    return {p.name: p.val for p in (found[0].propSet or [])} if found else {}


def _vm_and_cluster(
    session: Session, vm_id: str, cluster_id: str, plain: bool
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The VM's pool and folder and its cluster's configuration in one round trip (one per
    VM restarted, so one call less each); when that call fails, the VM alone (its failure
    is the capture's) and None for the cluster, which :func:`capture` then reads alone so
    a refusal there is reported as the cluster part's, as before. ``plain``: read as plain
    XML (remediator/plain_reads.py), the cluster's whole configuration once per VM."""
    if not cluster_id:
        return _read(session, vim.VirtualMachine, vm_id, ["resourcePool", "parent"], plain), None
    PC = vmodl.query.PropertyCollector
    try:
        found = session.retrieve(
            [
                PC.PropertySpec(type=vim.VirtualMachine, pathSet=["resourcePool", "parent"]),
                PC.PropertySpec(type=vim.ClusterComputeResource, pathSet=["configurationEx"]),
            ],
            [
                PC.ObjectSpec(obj=session.stub_obj(vim.VirtualMachine, vm_id)),
                PC.ObjectSpec(obj=session.stub_obj(vim.ClusterComputeResource, cluster_id)),
            ],
            plain=plain,
        )
    except vmodl.MethodFault:
        return _read(session, vim.VirtualMachine, vm_id, ["resourcePool", "parent"], plain), None
    props = {_moid(c.obj): {p.name: p.val for p in (c.propSet or [])} for c in found}
    if cluster_id not in props:
        return props.get(vm_id, {}), None  # the cluster read alone says why (or that it is gone)
    return props.get(vm_id, {}), props[cluster_id]


def capture(session: Session, vm_id: str, cluster_id: str, plain: bool = True) -> dict[str, Any]:
    """What names ``vm_id``; a part that cannot be read is listed under ``errors``. Its
    reads are plain XML unless ``plain`` is false (the same capture: test_plain_reads)."""
    out: dict[str, Any] = {"errors": []}
    vm, cfg = _vm_and_cluster(session, vm_id, cluster_id, plain)
    out["pool_id"] = _moid(vm.get("resourcePool"))
    out["folder_id"] = _moid(vm.get("parent"))
    if cluster_id:
        try:
            if cfg is None:
                cfg = _read(
                    session, vim.ClusterComputeResource, cluster_id, ["configurationEx"], plain
                )
            out.update(_cluster_part(cfg.get("configurationEx"), vm_id))
        except vmodl.MethodFault as exc:
            out["errors"].append(f"cluster rules and overrides: {describe(exc)}")
    try:
        auth = session.content().authorizationManager
        perms = auth.RetrieveEntityPermissions(
            entity=session.stub_obj(vim.VirtualMachine, vm_id), inherited=False
        )
        out["permissions"] = [
            {
                "principal": str(p.principal),
                "group": bool(p.group),
                "role_id": int(p.roleId),
                "propagate": bool(p.propagate),
            }
            for p in perms or []
        ]
    except vmodl.MethodFault as exc:
        out["errors"].append(f"permissions: {describe(exc)}")
    return out


def _cluster_part(cfg: Any, vm_id: str) -> dict[str, Any]:
    groups = [
        str(g.name)
        for g in getattr(cfg, "group", None) or []
        if is_a(g, vim.cluster.VmGroup) and vm_id in {_moid(v) for v in g.vm or []}
    ]
    rules = []
    for r in getattr(cfg, "rule", None) or []:
        if is_a(r, vim.cluster.AffinityRuleSpec) or is_a(r, vim.cluster.AntiAffinityRuleSpec):
            members = [_moid(v) for v in r.vm or []]
            if vm_id in members:
                rules.append(
                    {
                        "name": str(r.name),
                        "kind": "affinity"
                        if is_a(r, vim.cluster.AffinityRuleSpec)
                        else "anti-affinity",
                        "enabled": bool(r.enabled),
                        "mandatory": bool(r.mandatory),
                        "others": [m for m in members if m != vm_id],
                    }
                )
    das = None
    for o in getattr(cfg, "dasVmConfig", None) or []:
        if _moid(o.key) == vm_id and o.dasSettings is not None:
            s = o.dasSettings
            das = {
                "restart_priority": s.restartPriority,
                "isolation_response": s.isolationResponse,
                "restart_priority_timeout": s.restartPriorityTimeout,
            }
    drs = None
    for o in getattr(cfg, "drsVmConfig", None) or []:
        if _moid(o.key) == vm_id:
            drs = {"enabled": o.enabled, "behavior": o.behavior}
    return {"groups": groups, "rules": rules, "das_override": das, "drs_override": drs}


# What a "not restored" message is about (its prefix), for the metric's ``part`` label.
PARTS = (
    ("custom attribute", "custom_attributes"),
    ("permissions", "permissions"),
    ("cluster rules", "cluster"),
    ("DRS VM group", "cluster"),
    ("could not read", "capture"),
    ("tags", "tags"),
)


def classify(message: str) -> tuple[str, str]:
    """(part, cause) of a not-restored message: cause ``no_permission`` when vCenter
    refused for a missing privilege (describe() names it), else ``other``."""
    part = next((p for prefix, p in PARTS if message.startswith(prefix)), "other")
    denied = "NoPermission" in message or "HTTP 403" in message  # vAPI: 403 unauthorized
    return part, "no_permission" if denied else "other"


def restore(
    session: Session, new_id: str, cluster_id: str, ident: dict[str, Any], timeout: float
) -> list[str]:
    """Put the captured identity onto ``new_id``; returns what could not be restored."""
    errors: list[str] = []
    vm = session.stub_obj(vim.VirtualMachine, new_id)
    if cluster_id and (
        ident.get("groups")
        or ident.get("rules")
        or ident.get("das_override")
        or ident.get("drs_override")
    ):
        try:
            _restore_cluster(session, vm, cluster_id, ident, timeout, errors)
        except Exception as exc:  # noqa: BLE001 - a fault or a failed task: reported
            errors.append(f"cluster rules and overrides: {describe(exc)}")
    perms = ident.get("permissions") or []
    if perms:
        try:
            session.content().authorizationManager.SetEntityPermissions(
                entity=vm,
                permission=[
                    vim.AuthorizationManager.Permission(
                        entity=vm,
                        principal=p["principal"],
                        group=p["group"],
                        roleId=p["role_id"],
                        propagate=p["propagate"],
                    )
                    for p in perms
                ],
            )
        except vmodl.MethodFault as exc:
            errors.append(f"permissions: {describe(exc)}")
    return errors


def _restore_cluster(
    session: Session,
    vm: Any,
    cluster_id: str,
    ident: dict[str, Any],
    timeout: float,
    errors: list[str],
) -> None:
    new_id = _moid(vm)
    cfg = _read(session, vim.ClusterComputeResource, cluster_id, ["configurationEx"]).get(
        "configurationEx"
    )
    spec = vim.cluster.ConfigSpecEx()
    existing_groups = {
        str(g.name): g
        for g in getattr(cfg, "group", None) or []
        if isinstance(g, vim.cluster.VmGroup)
    }
    for name in ident.get("groups") or []:
        g = existing_groups.get(name)
        if g is None:
            errors.append(f"DRS VM group {name} no longer exists")
            continue
        if new_id in {_moid(v) for v in g.vm or []}:
            continue
        members = list(g.vm or []) + [vm]
        spec.groupSpec.append(
            vim.cluster.GroupSpec(operation="edit", info=vim.cluster.VmGroup(name=name, vm=members))
        )
    existing_rules = {str(r.name): r for r in getattr(cfg, "rule", None) or []}
    for r in ident.get("rules") or []:
        kind = (
            vim.cluster.AffinityRuleSpec
            if r["kind"] == "affinity"
            else vim.cluster.AntiAffinityRuleSpec
        )
        cur = existing_rules.get(r["name"])
        if cur is not None and new_id in {_moid(v) for v in getattr(cur, "vm", None) or []}:
            continue
        others = [session.stub_obj(vim.VirtualMachine, m) for m in r["others"]]
        info = kind(
            name=r["name"], enabled=r["enabled"], mandatory=r["mandatory"], vm=others + [vm]
        )
        if cur is not None:
            info.key = cur.key
        spec.rulesSpec.append(
            vim.cluster.RuleSpec(operation="edit" if cur is not None else "add", info=info)
        )
    das = ident.get("das_override")
    if das:
        has = any(_moid(o.key) == new_id for o in getattr(cfg, "dasVmConfig", None) or [])
        spec.dasVmConfigSpec.append(
            vim.cluster.DasVmConfigSpec(
                operation="edit" if has else "add",
                info=vim.cluster.DasVmConfigInfo(
                    key=vm,
                    dasSettings=vim.cluster.DasVmSettings(
                        restartPriority=das["restart_priority"],
                        isolationResponse=das["isolation_response"],
                        restartPriorityTimeout=das["restart_priority_timeout"],
                    ),
                ),
            )
        )
    drs = ident.get("drs_override")
    if drs:
        has = any(_moid(o.key) == new_id for o in getattr(cfg, "drsVmConfig", None) or [])
        spec.drsVmConfigSpec.append(
            vim.cluster.DrsVmConfigSpec(
                operation="edit" if has else "add",
                info=vim.cluster.DrsVmConfigInfo(
                    key=vm, enabled=drs["enabled"], behavior=drs["behavior"]
                ),
            )
        )
    if not (spec.groupSpec or spec.rulesSpec or spec.dasVmConfigSpec or spec.drsVmConfigSpec):
        return
    cluster = session.stub_obj(vim.ClusterComputeResource, cluster_id)
    wait_for(session, cluster.ReconfigureComputeResource_Task(spec=spec, modify=True), timeout)
