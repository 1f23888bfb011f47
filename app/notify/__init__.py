"""Outbound notifications: signed webhooks and e-mail, sent from an outbox table."""
