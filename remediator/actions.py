"""vCenter changes: power on, move (relocate or re-register), reset, vMotion, maintenance.

Each runs one vCenter task and waits for it with a deadline; past the deadline the task
is cancelled where vCenter allows it.  Faults are sorted into what the engine should do
next, because the same fault means different things in different places:

=================  ==================================================================
category           engine reaction
=================  ==================================================================
``retry``          transient (TaskInProgress, a generic InvalidState, lost connection):
                   try again after a backoff, up to the attempt limit
``replace``        the *target* host refused (InvalidHostState or HostNotConnected on
                   it, no resources): pick another host
``fallback``       the *source* host is dead and vCenter will not relocate from it:
                   re-register the VM from its datastore instead (``auto`` mode)
``already``        the change is already true (powering on a VM that is on): done
``gone``           the object no longer exists: skip
``timeout``        the deadline passed (task cancelled if it could be): retry
``locked``         the VM's files are locked (``FileLocked``): it still runs on a host
                   vCenter lost; held, never retried elsewhere, until the lock is freed
``fatal``          anything else (permissions, bad arguments): fail, a person looks
=================  ==================================================================

All functions are blocking pyvmomi and run on the engine's thread pool.
"""

from __future__ import annotations

import time
from typing import Any

from pyVmomi import vim, vmodl

from vcenter.session import describe

from .live import CONNECTION_ERRORS, Session

RETRY, REPLACE, FALLBACK, ALREADY, GONE, TIMEOUT, FATAL, LOCKED = (
    "retry",
    "replace",
    "fallback",
    "already",
    "gone",
    "timeout",
    "fatal",
    "locked",
)


class StepError(Exception):
    """A vCenter change did not happen; ``category`` says what to do about it."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category
        self.message = message


def _fault_host(exc: BaseException) -> str:
    host = getattr(exc, "host", None)
    return str(getattr(host, "_moId", "")) if host is not None else ""


def classify_fault(exc: BaseException, *, target: str = "", source: str = "") -> StepError:
    """Map a pyvmomi fault or socket error to a :class:`StepError`."""
    text = describe(exc)
    if isinstance(exc, StepError):
        return exc
    if isinstance(exc, vmodl.fault.ManagedObjectNotFound):
        return StepError(GONE, text)
    if isinstance(exc, vim.fault.InvalidPowerState):
        if str(getattr(exc, "existingState", "")) == "poweredOn":
            return StepError(ALREADY, text)
        return StepError(RETRY, text)
    if isinstance(exc, vim.fault.TaskInProgress):
        return StepError(RETRY, text)
    if isinstance(exc, vim.fault.FileLocked):
        # The files are in use: the VM still runs on a host vCenter lost (its isolation
        # response, fencing or the lock lease will free them).  Another host would not help.
        return StepError(LOCKED, text)
    if isinstance(exc, vim.fault.InvalidHostState | vmodl.fault.HostNotConnected):
        host = _fault_host(exc)
        if host and host == source and host != target:
            return StepError(FALLBACK, text)
        if host and host == target:
            return StepError(REPLACE, text)
        # Without a host in the fault we cannot tell which end refused; the engine looks
        # at live state to decide between another target and the register fallback.
        return StepError(REPLACE if not source else FALLBACK, text)
    if isinstance(
        exc,
        vim.fault.InsufficientResourcesFault
        | vim.fault.NoCompatibleHost
        | vim.fault.HostConnectFault
        | vim.fault.DisallowedMigrationDeviceAttached,
    ):
        return StepError(REPLACE, text)
    if isinstance(exc, vim.fault.InvalidState):
        return StepError(RETRY, text)
    if isinstance(exc, CONNECTION_ERRORS):
        return StepError(RETRY, f"vCenter unreachable: {text}")
    if isinstance(
        exc, vim.fault.NoPermission | vim.fault.InvalidLogin | vmodl.fault.InvalidArgument
    ):
        return StepError(FATAL, text)
    return StepError(FATAL, text)


def wait_for(session: Session, task: Any, timeout: float, *, vm: Any = None) -> Any:
    """Wait for a task; cancel it past ``timeout``.  Answers a VM's "moved or copied"
    question (asked when a re-registered VM first powers on) with "moved", since it was.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        polled = _poll(session, task, vm)
        if polled is None:  # read as before: the task's whole info, the question alone
            info = task.info
            state, result, cancelable = str(info.state), info.result, info.cancelable
            if vm is not None and state not in ("success", "error"):
                answer_moved(vm, session)
        else:
            state, result, cancelable, question = polled
            if question is not None and state not in ("success", "error"):
                _answer(vm, question)
        if state == "success":
            return result
        if state == "error":
            info = task.info  # the fault, as pyVmomi's exception
            raise info.error if info.error is not None else StepError(FATAL, "task failed")
        if time.monotonic() >= deadline:
            if cancelable:
                try:
                    task.CancelTask()
                except vmodl.MethodFault:
                    pass
                raise StepError(TIMEOUT, f"timed out after {timeout:.0f}s; task cancelled")
            raise StepError(TIMEOUT, f"timed out after {timeout:.0f}s; task cannot be cancelled")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


_TASK_POLLED = ["info.state", "info.result", "info.cancelable"]


def _poll(session: Session, task: Any, vm: Any) -> tuple[str, Any, bool, Any] | None:
    """(state, result, cancelable, the VM's pending question or None) of a running task,
    read in one plain-XML call (remediator/plain_reads.py), with the question of ``vm``
    when given: a power-on of a re-registered VM polls both until it ends, about eight
    times, so this halves its round trips and reads no pyVmomi objects. None when that
    read fails or lacks the task: :func:`wait_for` then reads as before (a question
    that cannot be read never fails the power-on)."""
    PC = vmodl.query.PropertyCollector
    specs = [PC.PropertySpec(type=vim.Task, pathSet=_TASK_POLLED)]
    objs = [PC.ObjectSpec(obj=task)]
    if vm is not None:
        specs.append(PC.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.question"]))
        objs.append(PC.ObjectSpec(obj=vm))
    try:
        found = session.retrieve(specs, objs, plain=True)
    except vmodl.MethodFault:
        return None
    props = {
        (str(getattr(c.obj, "_moId", "")), p.name): p.val for c in found for p in c.propSet or []
    }
    task_id = str(task._moId)  # noqa: SLF001
    if (task_id, "info.state") not in props:
        return None
    question = props.get((str(vm._moId), "runtime.question")) if vm is not None else None  # noqa: SLF001
    return (
        str(props[(task_id, "info.state")]),
        props.get((task_id, "info.result")),
        bool(props.get((task_id, "info.cancelable"))),
        question,
    )


def answer_moved(vm: Any, session: Session) -> None:
    """Answer the VM's pending question with "moved", if it has one.  Only
    ``runtime.question`` is read (``vm.runtime`` would fetch the whole runtime info, device
    states and feature requirements, on every poll of every power-on)."""
    PC = vmodl.query.PropertyCollector
    try:
        found = session.retrieve(
            [PC.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.question"])],
            [PC.ObjectSpec(obj=vm)],
        )
    except vmodl.MethodFault:
        return
    question = next((p.val for c in found for p in c.propSet or []), None)
    if question is not None:
        _answer(vm, question)


def _answer(vm: Any, question: Any) -> None:
    """Answer ``question`` (a ``VirtualMachineQuestionInfo``) with its "moved" choice."""
    for choice in getattr(question.choice, "choiceInfo", []) or []:
        label = f"{choice.key} {choice.label}".lower()
        if "moved" in label:
            vm.AnswerVM(questionId=question.id, answerChoice=choice.key)
            return


def _run(
    session: Session,
    start: Any,
    timeout: float,
    *,
    target: str = "",
    source: str = "",
    vm: Any = None,
) -> Any:
    try:
        return wait_for(session, start(), timeout, vm=vm)
    except StepError:
        raise
    except Exception as exc:  # noqa: BLE001 - every fault becomes a category
        raise classify_fault(exc, target=target, source=source) from exc


def power_on(session: Session, vm_id: str, timeout: float, *, answer: bool = False) -> None:
    vm = session.stub_obj(vim.VirtualMachine, vm_id)
    try:
        _run(session, vm.PowerOnVM_Task, timeout, vm=vm if answer else None)
    except StepError as err:
        if err.category != ALREADY:
            raise


def relocate(
    session: Session, vm_id: str, host_id: str, pool_id: str, timeout: float, source: str = ""
) -> None:
    """Cold or live migration to ``host_id`` (and its cluster's root resource pool)."""
    vm = session.stub_obj(vim.VirtualMachine, vm_id)
    spec = vim.vm.RelocateSpec(host=session.stub_obj(vim.HostSystem, host_id))
    if pool_id:
        spec.pool = session.stub_obj(vim.ResourcePool, pool_id)
    _run(
        session,
        lambda: vm.RelocateVM_Task(spec=spec, priority="defaultPriority"),
        timeout,
        target=host_id,
        source=source,
    )


def unregister(session: Session, vm_id: str) -> None:
    """Remove a VM from the inventory (its files stay): the first half of a re-register."""
    try:
        session.stub_obj(vim.VirtualMachine, vm_id).UnregisterVM()
    except Exception as exc:  # noqa: BLE001
        raise classify_fault(exc) from exc


def register(
    session: Session,
    *,
    name: str,
    vmx_path: str,
    folder_id: str,
    host_id: str,
    pool_id: str,
    timeout: float,
) -> str:
    """Register a VM's .vmx on ``host_id``; returns the new VM's moid.

    This is how a VM leaves a dead host on a real vCenter (which will not relocate off a
    host it cannot reach).  Custom attributes belong to the inventory object: the caller
    copies them onto the new one (:func:`set_attributes`) to keep its restart priority
    and protection.
    """
    folder = session.stub_obj(vim.Folder, folder_id)
    result = _run(
        session,
        lambda: folder.RegisterVM_Task(
            path=vmx_path,
            name=name,
            asTemplate=False,
            pool=session.stub_obj(vim.ResourcePool, pool_id),
            host=session.stub_obj(vim.HostSystem, host_id),
        ),
        timeout,
        target=host_id,
    )
    return str(getattr(result, "_moId", ""))


def set_attributes(session: Session, vm_id: str, attributes: dict[str, str]) -> list[str]:
    """Copy custom attributes onto ``vm_id``; returns what could not be set, and why.

    Best effort: a VM that runs without its attributes beats one that does not run, but a
    missing attribute (a refused ``Global.SetCustomField``, say) is reported, never
    swallowed: the restart priority and protection of the VM may hang on it.
    """
    vm = session.stub_obj(vim.VirtualMachine, vm_id)
    errors = []
    for key, value in attributes.items():
        try:
            vm.setCustomValue(key=key, value=value)
        except vmodl.MethodFault as exc:
            errors.append(f"custom attribute {key}: {describe(exc)}")
    return errors


def reset(session: Session, vm_id: str, timeout: float) -> None:
    vm = session.stub_obj(vim.VirtualMachine, vm_id)
    _run(session, vm.ResetVM_Task, timeout)


def enter_maintenance(session: Session, host_id: str, timeout: float) -> None:
    host = session.stub_obj(vim.HostSystem, host_id)
    _run(
        session,
        lambda: host.EnterMaintenanceMode_Task(timeout=int(timeout), evacuatePoweredOffVms=False),
        timeout + 5,
    )
