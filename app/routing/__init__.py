"""Routing: who answers a call the bot hands over (hotline numbers, rules, agents, queues).

The model (``config``): agents (skills with levels, languages, ``max_calls``, devices: the
web desk, a SIP URI, a phone number through the trunk), groups (members with order and
weight, strategy, ring timeout, max wait, wrap-up, priority, calendar, overflow target) and
hotline numbers with their rules (first match wins). It lives in the database
(``store.RoutingStore``, tables ``routing_*``) and is version-controlled as YAML
(``loader``: strict, every problem as ``file:line: reason``; ``hotline routing import |
export | check``). ``store.ensure_seeded(db, settings.routing_file)`` imports the demo file
when the database has no routing yet.

Layers, pure at the bottom:

- ``engine.route(request, roster, routing, now) -> RoutePlan`` — the decision: matched rule
  (and why each earlier rule did not match), target, the chain of steps (group queue ->
  overflow -> ... -> voicemail/callback/number) with each group's candidates best first
  and the reason every other member is skipped. ``routing`` is ``CompiledRouting(config)``;
  ``roster`` a ``RosterState`` (presence + round-robin memory). No I/O, no clock.
- ``strategies`` (ordering), ``conditions`` (rule checks, PRC holidays and 调休 via
  ``chinese_calendar``, the flows' ``BusinessCalendar``), ``region`` (province/city from
  the number; 号段 for mobiles), ``presence`` (the agent state machine, typed events),
  ``queue`` (offers, queue order, estimated wait, announcements, callback threshold),
  ``dispatch`` (which waiting calls go to which free agents now).
- ``service.RoutingService`` — the live object the call path drives. State sits behind the
  Protocols of ``state`` (``PresenceStore``, ``QueueStore``, ``OfferStore``,
  ``StatsStore``; in memory now, Redis later, same interface). Every change is published
  as a typed event of ``events`` (``agent_state``, ``offer``, ``queue_joined``,
  ``queue_left``, ``routing_decision``, ``overflow``, ``queue_exit``).

The interface for the call path and the agent desk (all synchronous, no I/O, ``now`` always
passed in; call them from the event loop)::

    svc = RoutingService(CompiledRouting(RoutingStore(db).load()), publish=bus_publish)
    svc.reload(CompiledRouting(new_config))          # after an import

    # agent desk
    svc.login(agent_id, now) / svc.logout(agent_id, now)
    svc.set_status(agent_id, "away", now, reason="meal")   # withdraws a ringing offer
    svc.end_wrap_up(agent_id, now)                   # "ready" before the wrap-up timer ends

    # a call asks for a human (handoff_requested -> RouteRequest)
    ticket = svc.enqueue(RouteRequest(...), now)     # Ticket: "queued" (group, position,
                                                     # estimated_wait_s) or "exit" (action)
    offers = svc.dispatch(now)                       # new Offers: ring offer.devices now
    svc.accept(offer.id, now)                        # answered: bridge caller and agent
    svc.reject(offer.id, now) | svc.no_answer(offer.id, now) | svc.device_busy(offer.id, now)
    svc.abandon(call_id, now)                        # caller hung up while queued/ringing
    svc.call_ended(agent_id, call_id, talk_s, now, group=offer.group)  # wrap-up starts
    svc.enqueue(request, now, joined_at=first_join, front=True)  # agent dropped mid-call

    # while the caller waits
    svc.position(call_id, now) -> (position, estimated_wait_s | None)
    svc.announcement(call_id, now) -> Announced | None   # only when position/wait improved
    svc.callback_due(call_id, now) -> bool           # once, when the wait passes the threshold
    svc.request_callback(call_id, number, now)       # keeps the caller's place
    svc.enqueue_callback(request, number, joined_at, now)  # after a "callback" queue_exit

    # timers: after every change, and at svc.next_deadline(now) (ring timeouts, wrap-up,
    # delays, max waits); also every few seconds (a group's calendar closing)
    svc.tick(now); svc.dispatch(now)

A ``queue_exit`` event tells the call path to leave routing: ``dial_number`` (``number``),
``voicemail``, ``callback`` (offer one; ``group`` and ``joined_at`` are kept for the task)
or ``no_route`` (the flow's queue-timeout offer, as today).

``simulate`` runs the service on a virtual clock; ``replay`` rebuilds past handoffs from the
event log and compares two routings through it (``hotline routing replay``).
"""
