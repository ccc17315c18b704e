"""Settings: defaults that run, and a bad value stops the start with a message naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.runtime.settings import SettingsError, load_settings


def test_defaults_use_embedded_redis_and_sqlite_under_var(tmp_path: Path) -> None:
    settings = load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path)})
    assert settings.host == "127.0.0.1" and settings.port == 8080
    assert settings.embedded_redis
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/telerounds.db"
    assert settings.allowed_origins == ()
    assert settings.blob_dir == tmp_path / "blobs"  # the blob store: under the var dir unless BLOB_DIR says
    assert load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path), "BLOB_DIR": "/mnt/blobs"}).blob_dir == Path("/mnt/blobs")


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path)}).secret_key
    second = load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path)}).secret_key
    assert len(first) >= 32 and first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_postgres_urls_get_the_async_driver(tmp_path: Path) -> None:
    settings = load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path), "DATABASE_URL": "postgresql://u@h/db"})
    assert settings.database_url == "postgresql+asyncpg://u@h/db"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("REDIS_URL", "http://localhost:6379"),
        ("REDIS_URL", "redis://localhost:port"),
        ("DATABASE_URL", "mysql://localhost/x"),
        ("SECRET_KEY", "short"),
        ("TELEROUNDS_DEMO_PASSWORD", ""),
        ("BLOB_DIR", "/mnt/blobs\x00"),
        ("ALLOWED_ORIGINS", "evil.example"),
        ("TELEROUNDS_DEMO_DATA", "maybe"),
        ("OFFER_TIMEOUT_URGENT_S", "soon"),
        ("PRESENCE_TTL_S", "0"),
        ("ICE_TRANSPORT_POLICY", "turn-only"),
    ],
)
def test_a_bad_value_names_the_setting(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path), name: value})


def test_ice_transport_policy_is_all_unless_relay_is_asked(tmp_path: Path) -> None:
    assert load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path)}).ice_transport_policy == "all"
    relay = load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path), "ICE_TRANSPORT_POLICY": "relay"})
    assert relay.ice_transport_policy == "relay"
