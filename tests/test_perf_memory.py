"""What the counters hold between collections (issue 15, memory per object)."""

from __future__ import annotations

from exporter.families import render
from exporter.perf import PerfConfig, build_families

from .metrics_helpers import parse, value
from .test_perf import fake_samples


def test_the_counter_families_are_held_as_gzip_members() -> None:
    """A collection's families are held until the next one (~16 MiB of text at 10,000 VMs
    beside the body's gzip copy): each is kept as its gzip member, and renders as before."""
    fams = build_families("vc1", fake_samples(), PerfConfig())
    with_samples = [f for f in fams if f.lines or f.members]
    assert with_samples
    assert all(not f.lines and f.members for f in with_samples)
    samples = parse(render(fams))
    assert value(samples, "vsphere_vm_cpu_ready_ratio", vm='web "one"') == 0.5


def test_samples_and_targets_carry_no_instance_dict() -> None:
    """One Sample and one Target per host and VM are held between collections."""
    sample = next(iter(fake_samples().values()))
    assert not hasattr(sample, "__dict__")
    assert not hasattr(sample.target, "__dict__")
