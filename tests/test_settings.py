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
    assert settings.board_refresh_s == 15.0  # BOARD_REFRESH_S
    assert settings.board_update_interval_s == 0.5  # BOARD_UPDATE_INTERVAL_S
    assert settings.blob_dir == tmp_path / "blobs"  # the blob store: under the var dir unless BLOB_DIR says
    assert load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path), "BLOB_DIR": "/mnt/blobs"}).blob_dir == Path("/mnt/blobs")


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path)}).secret_key
    second = load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path)}).secret_key
    assert len(first) >= 32 and first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_signing_settings_default_to_no_trust_no_timestamp_and_the_secret_key(tmp_path: Path) -> None:
    settings = load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path)})
    assert settings.signing_key == "" and settings.signing_trust_roots is None and settings.tsa_url == ""
    roots = tmp_path / "roots.pem"
    roots.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    given = load_settings(
        {
            "TELEROUNDS_VAR_DIR": str(tmp_path),
            "SIGNING_KEY": "k" * 32,
            "SIGNING_TRUST_ROOTS": str(roots),
            "TSA_URL": "http://tsa.example/rfc3161",
        }
    )
    assert given.signing_key == "k" * 32 and given.signing_trust_roots == roots
    assert given.tsa_url == "http://tsa.example/rfc3161"
    not_pem = tmp_path / "roots.txt"
    not_pem.write_text("hello")
    with pytest.raises(SettingsError, match="SIGNING_TRUST_ROOTS"):
        load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path), "SIGNING_TRUST_ROOTS": str(not_pem)})


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
        ("SIGNING_KEY", "short"),
        ("SIGNING_TRUST_ROOTS", "/no/such/roots.pem"),
        ("TSA_URL", "tsa.example"),
        ("MAX_RECORDINGS", "many"),
        ("RECORDING_RETENTION_YEARS", "5"),  # Thông tư 49/2017: at least ten years
        ("BOARD_REFRESH_S", "0.1"),
        ("BOARD_UPDATE_INTERVAL_S", "0"),
        ("ICE_TRANSPORT_POLICY", "turn-only"),
    ],
)
def test_a_bad_value_names_the_setting(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path), name: value})


def test_recordings_are_bounded_and_kept_ten_years_by_default(tmp_path: Path) -> None:
    settings = load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path)})
    assert settings.max_recordings == 6 and settings.recording_retention_years == 10
    chosen = load_settings(
        {"TELEROUNDS_VAR_DIR": str(tmp_path), "MAX_RECORDINGS": "0", "RECORDING_RETENTION_YEARS": "15"}
    )
    assert chosen.max_recordings == 0 and chosen.recording_retention_years == 15


def test_ice_transport_policy_is_all_unless_relay_is_asked(tmp_path: Path) -> None:
    assert load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path)}).ice_transport_policy == "all"
    relay = load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path), "ICE_TRANSPORT_POLICY": "relay"})
    assert relay.ice_transport_policy == "relay"
