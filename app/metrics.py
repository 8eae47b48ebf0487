"""Prometheus metrics (served at /metrics). Names follow Prometheus conventions."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CALLS_ACTIVE = Gauge("hotline_calls_active", "Calls in progress in this process")
EVENT_LOOP_TASKS = Gauge("hotline_event_loop_tasks",
                         "asyncio tasks alive on the server's event loop (a leak shows here)")
CALLS_TOTAL = Counter("hotline_calls_total", "Calls ended, by outcome", ["outcome"])
TURN_LATENCY = Histogram(
    "hotline_turn_latency_seconds",
    "End of the caller's speech to the first bot audio sent",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0),
)
AUDIO_GAPS = Counter(
    "hotline_outbound_audio_gaps_total",
    "Bot audio interrupted by a short silence because the next chunk was not ready",
)
LATE_FRAMES = Counter(
    "hotline_outbound_late_frames_total", "Outbound 20 ms frames sent more than 20 ms late"
)
EVENT_WRITE_FAILURES = Counter(
    "hotline_event_write_failures_total", "Call events that could not be stored"
)
CHAT_MESSAGES = Counter(
    "hotline_chat_messages_total", "Chat frames from clients, by result", ["result"]
)
CHAT_REPLY_LATENCY = Histogram(
    "hotline_chat_reply_seconds",
    "A chat message taken by the bot to its first reply",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3.0, 5.0),
)

# -- SIP/RTP (app/sip, app/media/rtp_leg.py)
SIP_REQUESTS = Counter("hotline_sip_requests_total", "SIP requests received", ["method"])
SIP_MALFORMED = Counter(
    "hotline_sip_malformed_total",
    "Malformed input answered with 4xx or dropped, by kind (sip, sdp, rtp, rtcp, dtmf)",
    ["kind"],
)
SIP_REJECTED = Counter(
    "hotline_sip_rejected_total",
    "INVITE/REGISTER refused, by reason (forbidden, auth, rate_limited, overload, "
    "unknown_number, not_acceptable)",
    ["reason"],
)
SIP_CALLS_ACTIVE = Gauge("hotline_sip_calls_active", "SIP calls (in and out) in progress")
RTP_LATE_PACKETS = Counter(
    "hotline_rtp_late_packets_total", "RTP packets that arrived after their playout time"
)
RTP_CONCEALED_FRAMES = Counter(
    "hotline_rtp_concealed_frames_total", "20 ms frames concealed for lost or late RTP"
)

# -- several nodes (app/cluster)
LOST_NODE_CALLS = Counter(
    "hotline_lost_node_calls_finalized_total",
    "Calls of a lost node (heartbeat too old) this node finalized as interrupted",
)
ROUTING_STATE_FAILURES = Counter(
    "hotline_routing_state_failures_total",
    "Routing operations the shared routing state (Redis) could not take, by operation "
    "(an enqueue so failed sends the call to the flow's queue-timeout path)",
    ["op"],
)
HEARTBEAT_FAILURES = Counter(
    "hotline_node_heartbeat_failures_total", "Heartbeats this node could not write"
)
NODE_DRAINING = Gauge("hotline_node_draining", "1 while this node drains before it stops")
BUS_RECONNECTS = Counter(
    "hotline_event_bus_reconnects_total", "Times the shared event bus (Redis) reconnected"
)
CLUSTER_LEADER = Gauge(
    "hotline_cluster_leader",
    "1 while this node leads the cluster's singletons (the lost-node finalizer), else 0",
    ["node_id"],
)
RATE_LIMIT_STORE_FAILURES = Counter(
    "hotline_rate_limit_store_failures_total",
    "Rate-limit checks the shared store (Redis) failed: requests then allowed unchecked",
)

# -- alerts (app/alerts)
ALERTS_RAISED = Counter("hotline_alerts_raised_total", "Alerts raised, by kind", ["kind"])
ALERT_WEBHOOKS = Counter(
    "hotline_alert_webhooks_total",
    "Alert webhook deliveries, by result (sent, failed after the retries, dropped)", ["result"],
)
