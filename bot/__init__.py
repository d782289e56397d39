"""contract-bot: EO 14093 compliance reviews of commercial-spyware contracts, run in Slack."""
