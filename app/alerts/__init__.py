"""Alerts: SLA breach, long queue wait, a live call's falling sentiment. ``rules`` decides
(pure), ``engine`` watches the node and publishes, ``webhook`` delivers."""
