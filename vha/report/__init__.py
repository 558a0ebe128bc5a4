"""``vha report``: rightsizing and cost findings read back from Prometheus.

``rightsizing`` holds the recording rules (standard library only, so ``rules/generate.py``
can write them into ``rules/recording.yml``); ``report`` queries their results and renders
tables, Markdown and CSV.
"""
