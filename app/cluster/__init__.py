"""Several Hotline nodes on one database (and, optionally, one Redis): node liveness (each
node's heartbeat, a lost node's calls finalized by a survivor), draining on SIGTERM, the
shared live event bus and rate limits, and leader election for singletons. One node
(``make run``) needs none of it running elsewhere: the heartbeat is one row in its own
database, the bus and limits stay in process, and the node always leads.
"""
