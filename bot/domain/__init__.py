"""Pure domain rules: no Slack, no SQL, no scheduler, no clock of their own (``now`` is an argument)."""
