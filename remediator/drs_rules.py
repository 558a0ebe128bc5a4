"""DRS rules and groups as placement constraints, the way vSphere itself treats them.

Read from the cluster's ``configurationEx`` (``rule`` and ``group``), enabled rules only:

* **VM-Host rules** (``ClusterVmHostRuleInfo``): the VMs of a VM group must (or should)
  run on, or must (or should) not run on, the hosts of a host group;
* **VM-VM rules**: anti-affinity (``ClusterAntiAffinityRuleSpec``, keep these VMs on
  different hosts) and affinity (``ClusterAffinityRuleSpec``, keep them together).

``mandatory`` (a "must" rule) makes it a hard constraint, as for vSphere, which never
violates a required rule: a host that would break one is not a candidate.  Required
VM-VM affinity is treated as a preference here (restarting a VM beside its partners is
often impossible when their host is the one that failed).  "Should" rules and affinity
are preferences: a target that breaks none wins; one that breaks some is taken only when
nothing else fits, and the placement's reason names the rules it breaks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from vcenter.soap_values import is_a


@dataclass(frozen=True)
class VmHostRule:
    name: str
    vms: frozenset[str]
    hosts: frozenset[str]
    affine: bool  # True: run on the hosts; False: do not run on them
    mandatory: bool


@dataclass(frozen=True)
class VmVmRule:
    name: str
    vms: frozenset[str]
    anti: bool
    mandatory: bool


@dataclass(frozen=True)
class DrsRules:
    vm_host: tuple[VmHostRule, ...] = ()
    vm_vm: tuple[VmVmRule, ...] = ()

    def judge(self, vm_id: str, host_id: str, where: Mapping[str, str]) -> tuple[str, list[str]]:
        """(the required rule ``vm_id`` on ``host_id`` breaks, or ``""``; should-rules it breaks).

        ``where``: VM moid -> host moid of the cluster's running VMs and of those already
        placed in this batch.
        """
        soft: list[str] = []
        for r in self.vm_host:
            if vm_id not in r.vms:
                continue
            ok = (host_id in r.hosts) == r.affine
            if ok:
                continue
            what = f"{'must' if r.mandatory else 'should'}{'' if r.affine else ' not'} run on"
            text = f"VM-Host rule {r.name} ({what} its host group)"
            if r.mandatory:
                return text, soft
            soft.append(text)
        for vv in self.vm_vm:
            if vm_id not in vv.vms:
                continue
            partners = {where.get(v) for v in vv.vms if v != vm_id} - {None}
            if vv.anti and host_id in partners:
                text = f"anti-affinity rule {vv.name} (a partner runs there)"
                if vv.mandatory:
                    return text, soft
                soft.append(text)
            elif not vv.anti and partners and host_id not in partners:
                soft.append(f"affinity rule {vv.name} (its partners run elsewhere)")
        return "", soft


def _moid(value: Any) -> str:
    return str(value._moId) if value is not None and hasattr(value, "_moId") else ""


def from_config(config_ex: Any) -> DrsRules:
    """Parse ``ClusterConfigInfoEx`` (``None`` or a non-cluster config: no rules): pyVmomi's
    object or the plain-XML read's stand-in (remediator/plain_reads.py), hence ``is_a``."""
    vm_groups: dict[str, frozenset[str]] = {}
    host_groups: dict[str, frozenset[str]] = {}
    for g in getattr(config_ex, "group", None) or []:
        if is_a(g, vim.cluster.VmGroup):
            vm_groups[str(g.name)] = frozenset(_moid(v) for v in g.vm or [])
        elif is_a(g, vim.cluster.HostGroup):
            host_groups[str(g.name)] = frozenset(_moid(h) for h in g.host or [])
    vm_host: list[VmHostRule] = []
    vm_vm: list[VmVmRule] = []
    for r in getattr(config_ex, "rule", None) or []:
        if getattr(r, "enabled", True) is False:
            continue
        mandatory = bool(getattr(r, "mandatory", False))
        if is_a(r, vim.cluster.VmHostRuleInfo):
            vms = vm_groups.get(str(r.vmGroupName or ""), frozenset())
            if r.affineHostGroupName:
                hosts, affine = host_groups.get(str(r.affineHostGroupName), frozenset()), True
            elif r.antiAffineHostGroupName:
                hosts, affine = host_groups.get(str(r.antiAffineHostGroupName), frozenset()), False
            else:
                continue
            vm_host.append(VmHostRule(str(r.name), vms, hosts, affine, mandatory))
        elif is_a(r, vim.cluster.AntiAffinityRuleSpec) or is_a(r, vim.cluster.AffinityRuleSpec):
            anti = is_a(r, vim.cluster.AntiAffinityRuleSpec)
            vms = frozenset(_moid(v) for v in r.vm or [])
            vm_vm.append(VmVmRule(str(r.name), vms, anti, mandatory))
    return DrsRules(tuple(vm_host), tuple(vm_vm))
