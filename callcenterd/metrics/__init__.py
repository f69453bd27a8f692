"""Prometheus metrics: definitions (`registry.py`), live figures read at scrape time
(`live.py`) and the store's call counts, cached (`call_counts.py`).

Everything hangs off one `prometheus_client.CollectorRegistry` made in `create_app`: no
module-level registry, so two apps in one process (tests) never share a figure.
"""
