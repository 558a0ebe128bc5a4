"""The seven dashboards, one module each, built with grafana-foundation-sdk (Grafana's typed
builders): overview, host, vm, capacity, remediation, performance and cost each have a
``build()`` returning the dashboard's builder. common.py holds what they share (data
source, template variables, annotations, links, colours, the panel kinds and the layout),
promql.py the selectors, joins and thresholds. grafana/generate.py renders them to
grafana/dashboards/*.json."""
