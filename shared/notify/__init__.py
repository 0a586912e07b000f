"""Notifications: events recorded with the change they report, delivered to webhooks with retries.

`events` records (an outbox, no network), `targets` is the NOTIFY_WEBHOOKS model, `messages` and
`formats` turn an event into a Slack or Teams payload, `store` holds the deliveries' SQL and
`deliver` sends what is due.
"""
