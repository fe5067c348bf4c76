"""The operator's view: Prometheus metrics and a pluggable sink, the live status page, devtools, JSON logs.

Nothing here is needed to serve an app; each part is switched on by a setting
(``status_page``, ``dev``, ``log_format``) or by the app author
(:func:`set_metrics_sink`).
"""

from .prom import MetricsSink, set_metrics_sink

__all__ = ["MetricsSink", "set_metrics_sink"]
