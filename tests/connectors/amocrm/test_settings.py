"""AmoCrmSettings from the environment: either auth mode, variable names a portals file gives,
secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.amocrm import settings_from_env


def test_oauth_from_the_environment(tmp_path: Path) -> None:
    env = {
        "AMOCRM_BASE_URL": "https://example.amocrm.ru",
        "AMOCRM_CLIENT_ID": "client-1",
        "AMOCRM_CLIENT_SECRET": "test-secret-value",
        "AMOCRM_REDIRECT_URI": "https://heatsync.example/cb",
        "AMOCRM_REFRESH_TOKEN": "test-refresh-value",
        "AMOCRM_UNOWNED_USER_IDS": "7000001, 7000002",
    }
    s = settings_from_env("shop", env, token_dir=tmp_path)
    assert s.oauth and s.portal == "shop" and s.root == "https://example.amocrm.ru"
    assert s.unowned_user_ids == (7000001, 7000002) and s.token_dir == tmp_path
    assert s.locale == "ru" and s.rate_per_second == 7
    assert "test-secret-value" not in repr(s) and "test-refresh-value" not in repr(s)


def test_a_long_lived_token_wins_and_names_can_be_given() -> None:
    env = {
        "SHOP2_URL": "https://shop2.kommo.com/",
        "SHOP2_TOKEN": "test-llt-value",
        "AMOCRM_REFRESH_TOKEN": "test-refresh-value",
    }
    names = {"base_url": "SHOP2_URL", "access_token": "SHOP2_TOKEN"}
    s = settings_from_env("shop2", env, names=names)
    assert not s.oauth and s.root == "https://shop2.kommo.com"


def test_missing_credentials_say_what_is_missing() -> None:
    with pytest.raises(ValueError, match="access_token"):
        settings_from_env("x", {"AMOCRM_BASE_URL": "https://x.amocrm.ru"})
    with pytest.raises(ValueError, match="redirect_uri"):
        settings_from_env(
            "x",
            {
                "AMOCRM_BASE_URL": "https://x.amocrm.ru",
                "AMOCRM_REFRESH_TOKEN": "test-refresh-value",
                "AMOCRM_CLIENT_ID": "c",
                "AMOCRM_CLIENT_SECRET": "test-secret-value",
            },
        )
    with pytest.raises(ValueError, match="root"):
        settings_from_env("x", {"AMOCRM_BASE_URL": "example.amocrm.ru", "AMOCRM_ACCESS_TOKEN": "t"})
