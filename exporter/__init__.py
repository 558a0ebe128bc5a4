"""vsphere-ha-stack exporter: vCenter state, followed incrementally, as Prometheus metrics."""

__version__ = "0.1.0"
