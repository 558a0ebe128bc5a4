"""The eight dashboards, one module each, built with grafana-foundation-sdk (Grafana's typed
builders): overview, host, vm, capacity, remediation, performance, cost and datastore each
have a ``build()`` returning the dashboard's builder (perf_panels.py holds the performance
panels host and vm share). common.py holds what they share (data
source, template variables, annotations, links, colours, the panel kinds and the layout),
promql.py the selectors, joins and thresholds. grafana/generate.py renders them to
grafana/dashboards/*.json."""
