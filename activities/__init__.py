"""Every side effect of the order process. Each activity is idempotent per order and step."""
