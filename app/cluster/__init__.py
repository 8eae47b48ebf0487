"""Several Hotline nodes on one database (and, optionally, one Redis): node liveness (each
node's heartbeat, a lost node's calls finalized by a survivor), draining on SIGTERM, and the
shared live event bus and rate limits. One node (``make run``) needs none of it running
elsewhere: the heartbeat is one row in its own database, the bus and limits stay in process.
"""
