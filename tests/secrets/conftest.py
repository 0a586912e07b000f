"""The fake Key Vault, fresh for each test that asks for it."""

from __future__ import annotations

import fake_keyvault
import pytest


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> fake_keyvault.FakeKeyVault:
    return fake_keyvault.install(monkeypatch)
