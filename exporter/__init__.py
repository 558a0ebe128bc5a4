"""The exporter: vCenter state, followed incrementally, as Prometheus metrics.

It owns the property-collector follower (``sync``), the in-memory inventory it feeds
(``inventory``), one collector per concern that renders that inventory (``collectors/``,
``render``), the performance-counter and cost collectors (``perf``, ``cost``) and the HTTP
app that serves the body (``app``). vCenter sessions and the configuration file come from
:mod:`vcenter`; nothing here imports the remediator.
"""

__version__ = "0.1.0"
