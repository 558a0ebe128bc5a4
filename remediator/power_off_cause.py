"""Why a VM is powered off, from the events vCenter recorded — restart only on proof.

vSphere HA restarts only VMs that went down without anybody asking; a guest-OS shutdown is
someone asking. What vCenter records (vSphere API reference, event types; the simulator
posts the same, ``POST /api/v1/vms/{name}/power-off``):

* a person's ``PowerOffVM_Task``: ``VmStoppingEvent`` + ``VmPoweredOffEvent``, userName =
  that person;
* a person's ``ShutdownGuest``: ``VmGuestShutdownEvent`` by that person, then the
  power-off (``VmPoweredOffEvent``);
* a shutdown started inside the guest (``shutdown -h``, the Start menu): no task and no
  session, so only a ``VmPoweredOffEvent`` with no userName (or ``vpxuser``, the account
  vCenter uses on the host) when vCenter notices the power state change;
* vSphere HA's isolation response: ``VmShutdownOnIsolationEvent`` (a ``VmPoweredOffEvent``
  subclass);
* Fault Tolerance terminating a VM: ``VmFaultToleranceVmTerminatedEvent``;
* a host failure: ``HostConnectionLostEvent`` / ``DasHostFailedEvent`` on its host, and no
  power-off event of the VM (vCenter last knew it running);
* a VMX crash: nothing typed that tells it from a guest shutdown.

So a ``VmPoweredOffEvent`` with no user is ambiguous — a guest shutdown and a crash look
alike — and the verdict is "alert and leave it". Only a host failure or HA's isolation
response is proof of an involuntary power-off; a person's or the guest's own shutdown is
never undone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Accounts that act for vCenter or its services, not for a person.
SYSTEM_USERS = frozenset({"", "vpxuser", "dcui", "com.vmware.vim.eam"})

VM_EVENT_TYPES = [
    "VmPoweredOnEvent",
    "VmPoweredOffEvent",
    "VmShutdownOnIsolationEvent",
    "VmGuestShutdownEvent",
    "VmFaultToleranceVmTerminatedEvent",
    "VmDasBeingResetEvent",
    "VmDasBeingResetWithScreenshotEvent",
    "VmRestartedOnAlternateHostEvent",
]
HOST_EVENT_TYPES = ["HostConnectionLostEvent", "DasHostFailedEvent", "DasHostIsolatedEvent"]

USER = "user"
GUEST_BY_USER = "guest-shutdown-by-user"
NO_USER = "powered-off-no-user"
ISOLATION = "ha-isolation-response"
FT = "ft-terminated"
HOST_FAILURE = "host-failure"
HA_RESET = "ha-reset"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class EventRecord:
    """The part of a vCenter event the classifier needs."""

    kind: str  # the event's type name, e.g. "VmPoweredOffEvent"
    created: float
    user: str = ""
    key: int = 0
    host_id: str = ""


@dataclass(frozen=True)
class PowerOffVerdict:
    cause: str
    restart: bool  # proof of an involuntary power-off: a restart is what HA would do
    alert: bool  # a person should look (ambiguous or unexplained)
    reason: str
    user: str = ""


def is_person(user: str) -> bool:
    u = user.strip()
    return u not in SYSTEM_USERS and not u.startswith("vpxd-extension")


def classify(events: Sequence[EventRecord], host_id: str = "") -> PowerOffVerdict:
    """The cause of a VM's latest power-off from its events and its host's.

    Only events after the VM's last power-on count. A person's request (a user power-off,
    a guest shutdown asked through the API) wins over anything else; then HA's isolation
    response, FT, a host failure; a power-off with no user, or nothing at all, is ambiguous.
    """
    ordered = sorted(events, key=lambda e: (e.created, e.key))
    last_on = max((i for i, e in enumerate(ordered) if e.kind == "VmPoweredOnEvent"), default=-1)
    since = ordered[last_on + 1 :]
    by_kind: dict[str, list[EventRecord]] = {}
    for e in since:
        by_kind.setdefault(e.kind, []).append(e)

    asked = [e for e in by_kind.get("VmGuestShutdownEvent", []) if is_person(e.user)]
    if asked:
        u = asked[-1].user
        return PowerOffVerdict(GUEST_BY_USER, False, False, f"{u} asked the guest to shut down", u)
    offs = by_kind.get("VmPoweredOffEvent", [])
    people = [e for e in offs if is_person(e.user)]
    if people:
        u = people[-1].user
        return PowerOffVerdict(USER, False, False, f"powered off by {u}", u)
    if by_kind.get("VmShutdownOnIsolationEvent"):
        return PowerOffVerdict(
            ISOLATION,
            True,
            False,
            "vSphere HA's isolation response powered it off on an isolated host",
        )
    if by_kind.get("VmFaultToleranceVmTerminatedEvent"):
        return PowerOffVerdict(
            FT, False, True, "Fault Tolerance terminated it: FT and HA own its recovery"
        )
    if by_kind.get("VmDasBeingResetEvent") or by_kind.get("VmDasBeingResetWithScreenshotEvent"):
        return PowerOffVerdict(HA_RESET, False, True, "vSphere HA is resetting it")
    if offs:
        return PowerOffVerdict(
            NO_USER,
            False,
            True,
            "powered off with no user: a shutdown from inside the guest and a crash look the same "
            "to vCenter, so it is left off",
        )
    host_down = [
        e
        for e in since
        if e.kind in HOST_EVENT_TYPES and (not host_id or not e.host_id or e.host_id == host_id)
    ]
    if host_down:
        return PowerOffVerdict(
            HOST_FAILURE,
            True,
            False,
            f"its host failed ({host_down[-1].kind}) and no power-off was recorded",
        )
    return PowerOffVerdict(
        UNKNOWN,
        False,
        True,
        "no event explains the power-off (events expired, or none was recorded): left off",
    )


def _record(e: Any) -> EventRecord:
    created = getattr(e, "createdTime", None)
    host = getattr(getattr(e, "host", None), "host", None)
    return EventRecord(
        kind=type(e).__name__.split(".")[-1],
        created=created.timestamp() if isinstance(created, datetime) else 0.0,
        user=str(getattr(e, "userName", "") or ""),
        key=int(getattr(e, "key", 0) or 0),
        host_id=str(getattr(host, "_moId", "") or ""),
    )


def records(events: Iterable[Any]) -> list[EventRecord]:
    return [_record(e) for e in events or []]


def read_events(
    session: Any, vm_id: str, host_id: str = "", max_count: int = 100
) -> list[EventRecord]:
    """The VM's power events and its host's failure events (EventManager.QueryEvents).

    Raises what QueryEvents raises: the caller decides (an unreadable history is
    "unknown", never "crashed").
    """
    from pyVmomi import vim

    content = session.content()
    em = content.eventManager

    def query(kind: type, moid: str, types: list[str]) -> list[EventRecord]:
        spec = vim.event.EventFilterSpec(
            entity=vim.event.EventFilterSpec.ByEntity(
                entity=session.stub_obj(kind, moid), recursion="self"
            ),
            eventTypeId=types,
            maxCount=max_count,
        )
        return records(em.QueryEvents(spec) or [])

    out = query(vim.VirtualMachine, vm_id, VM_EVENT_TYPES)
    if host_id:
        out += query(vim.HostSystem, host_id, HOST_EVENT_TYPES)
    return out


def classify_live(session: Any, vm_id: str, host_id: str = "") -> PowerOffVerdict:
    """:func:`classify` over a live read; an unreadable history is ``unknown``."""
    from pyVmomi import vmodl

    try:
        events = read_events(session, vm_id, host_id)
    except vmodl.MethodFault as exc:
        return PowerOffVerdict(
            UNKNOWN, False, True, f"events could not be read ({type(exc).__name__}): left off"
        )
    return classify(events, host_id)
