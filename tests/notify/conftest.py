"""Fixtures of the notification tests: a webhook receiver and settings that deliver to it quickly."""

from __future__ import annotations

import pytest
from webhooks import Webhook

from shared.notify.targets import WebhookTarget


@pytest.fixture
def webhook():
    receiver = Webhook()
    yield receiver
    receiver.close()


@pytest.fixture
def notify_settings(settings):
    """The test's settings with fast retries and the given webhooks."""

    def make(*targets: WebhookTarget, **overrides):
        return settings.model_copy(
            update={
                "notify_webhooks": targets,
                "notify_backoff_base_seconds": 0.01,
                "notify_backoff_max_seconds": 0.05,
                "notify_timeout_seconds": 2.0,
                **overrides,
            }
        )

    return make
