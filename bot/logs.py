"""The one logging setup: what an operator reads, one line per request, nothing per idle minute, no secrets."""

from __future__ import annotations

import logging

# Libraries that speak at INFO about their own routine (APScheduler on every run of a job, Alembic on every start,
# Bolt on every refused signature, with the body) are kept to warnings.
QUIET = ("apscheduler", "alembic", "slack_bolt", "slack_sdk", "urllib3", "websocket")


def configure_logging(level: int = logging.INFO) -> None:
    """Log to standard error at ``level``: time, level, logger, message."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    bolt = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _ClientCarriesTheToken) for f in bolt.filters):
        bolt.addFilter(_ClientCarriesTheToken())


class _ClientCarriesTheToken(logging.Filter):
    """Drops Bolt's start-up warning that ``token`` is unused because a ``client`` was given.

    NOTE: Bolt reads SLACK_BOT_TOKEN from the environment itself and warns when a client is passed too; ours
    is built from that same token (with GovSlack's API URL and our retry policy), so the warning is only noise.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("As you gave `client` as well, `token` will be unused")
