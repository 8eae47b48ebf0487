"""Web chat: the same bot, flows and call record as the phone, over text (``session``)."""
