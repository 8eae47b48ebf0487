"""The human side of a call: live routing to agents, offers rung on desks and phones, the
caller bridged to an agent, desk actions, wrap-up and callbacks (see docs/ARCHITECTURE.md,
"Human fallback")."""
