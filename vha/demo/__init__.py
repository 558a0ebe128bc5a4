"""``vha demo``: the whole stack on loopback over the simulator, and the faults to drive it.

``stack`` starts and stops the processes (simulator, exporter, remediator, Prometheus,
Alertmanager) and is shared with the end-to-end tests and benchmarks; ``run`` narrates
failures for a person watching.
"""
