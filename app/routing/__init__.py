"""Routing: who answers a call the bot hands over (queues, agents, rules)."""
