"""The ``vha`` command and the tools built on both daemons: the demo stack and the report.

Nested under one name so an installed wheel adds ``vha`` rather than generic top-level names
such as ``demo`` or ``report`` to site-packages. Nothing in ``exporter``, ``remediator`` or
``vcenter`` imports this package: data flows from vCenter through the daemons, and these
tools sit on top.
"""
