"""vha-sim: a vCenter simulator for vSphere HA work, and its Python harness.

The simulator itself is Go (``sim/*.go``, built on govmomi's vcsim); this package builds it,
runs it and drives its fault-injection API. See ``docs/simulator.md``.
"""

from sim.harness import (
    BINARY,
    Simulator,
    SimulatorClient,
    SimulatorError,
    build,
)

__all__ = ["BINARY", "Simulator", "SimulatorClient", "SimulatorError", "build"]
