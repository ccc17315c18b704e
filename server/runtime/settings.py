"""The one settings object, read from the environment.

A bad value stops the start with a `SettingsError` that names the variable.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from redis.connection import parse_url

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """A setting has a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None  # None: start an embedded redis-server child process
    database_url: str = ""  # filled in from var_dir when empty
    secret_key: str = ""
    demo_password: str = "demo"
    allowed_origins: tuple[str, ...] = ()  # empty: same origin only
    metrics_token: str = ""  # empty: /metrics answers scrapers on this host only
    var_dir: Path = Path("var")
    # Files every instance reads (attachments): one folder all instances mount; var_dir/blobs when unset.
    blob_dir: Path = Path("var/blobs")
    token_ttl_s: int = 12 * 3600
    # Sign-in attempts (failed ones; a success gives its token back), per username from one
    # client address, and per client address: a burst of this many, then refilled evenly over a
    # minute (server/live/ratelimit.py). Never per username alone: a stranger's guesses would then
    # lock the owner out.
    login_attempts_per_minute: int = 10
    login_address_attempts_per_minute: int = 50  # a district hospital signs in from one address
    # The reverse proxies (nginx) whose X-Forwarded-For is believed: the client's address is
    # read from that header only when the direct peer is one of these (server/http/addresses.py).
    trusted_proxies: tuple[Network, ...] = ()
    # Socket.IO events per user, across all their devices and instances: a burst, then a rate.
    # Generous: starting a call sends dozens of ICE candidates at once.
    rate_events_burst: int = 200
    rate_events_per_s: float = 50.0
    demo_data: bool = True
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    turn_ttl_s: int = 3600
    # "relay": calls go through TURN only (a hospital that must not reveal its addresses, and the
    # tests that prove TURN); "all": direct paths first, TURN when they fail.
    ice_transport_policy: str = "all"
    offer_timeout_routine_s: float = 30.0
    offer_timeout_urgent_s: float = 15.0
    offer_timeout_emergency_s: float = 30.0
    wait_alert_s: float = 600.0
    # The supervisors' board is sent again this often with nothing changed, for what changes
    # without an event (waiting times turning overdue, durations, a crashed instance's users).
    # Changes to the board are coalesced: each instance sends at most one update per interval.
    board_update_interval_s: float = 0.5
    board_refresh_s: float = 15.0
    reconnect_grace_s: float = 20.0
    presence_ttl_s: int = 30
    precall_max: int = 4
    precall_seconds: float = 60.0
    # Recordings at the server (server/media/): how many one instance writes at once, kept how long.
    # 6 of the 8 two-party calls one core recorded in real time under 85 % CPU (docs/benchmarks.md).
    max_recordings: int = 6
    recording_retention_years: int = 10
    # Caps on what one hospital, round, consult or user may store (too_large / rate_limited).
    rounds_per_hospital: int = 50  # rounds not cancelled and not over, at one hospital
    round_max_patients: int = 40  # patients listed on one round
    notes_per_consult: int = 1000  # notes and amendments of one consult
    note_bytes_per_consult: int = 2_000_000  # UTF-8 bytes of the text of one consult's notes
    # One page of notes (`note:list`, the join acks): at most this many notes and about this many
    # bytes of text (a page always holds at least one note; a note is at most 80 kB).
    note_page_size: int = 100
    note_page_bytes: int = 256 * 1024
    attachment_bytes_per_consult: int = 100 * 1024 * 1024
    attachment_bytes_per_user_day: int = 200 * 1024 * 1024  # uploaded by one user in 24 hours
    # Caps per user on the live side (server/live/caps.py). Requests waiting for an answer (queued or
    # offered) per clinician, and emergencies among them: each open emergency rings every
    # specialist of its specialty at once, so one is what a clinician needs at a time.
    max_open_requests: int = 3
    max_open_emergencies: int = 1
    # Live sockets per user across all instances: a few tabs on a few devices.
    max_sockets_per_user: int = 8
    # A connection must deliver a request's line and headers within this many seconds of
    # connecting or of its last answer, or it is closed: slow half-sent requests held forever.
    http_header_timeout_s: float = 10.0
    # Digital signatures on the minutes (server/actions/signatures.py). The key that seals users'
    # PKCS#12 files at rest (AES-GCM); empty: derived from SECRET_KEY.
    signing_key: str = ""
    signing_trust_roots: Path | None = None  # PEM file of the CA certificates trusted; None: none
    tsa_url: str = ""  # an RFC 3161 time-stamping service; empty: signatures carry no timestamp

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    """Addresses and CIDR blocks, comma-separated; a single address is its own /32 or /128."""
    found = []
    for item in _list(env, name):
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(f"{name} entries must be IP addresses or CIDR blocks, got {item!r}") from None
    return tuple(found)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def normalize_database_url(url: str) -> str:
    """Map plain `postgresql://` and `sqlite://` URLs to their async drivers."""
    for prefix, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise SettingsError(f"DATABASE_URL must start with postgresql:// or sqlite://, got {url.split(':', 1)[0]!r}")


def redacted(url: str) -> str:
    """A URL fit for a message: without its password."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url.split("://", 1)[0] + "://…"


def _redis_url(env: Mapping[str, str]) -> str | None:
    redis_url = env.get("REDIS_URL") or None
    if redis_url is None:
        return None
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {redacted(redis_url)!r}")
    try:
        parse_url(redis_url)  # type: ignore[no-untyped-call]  # checked now, not at the first use
    except ValueError as error:
        raise SettingsError(f"REDIS_URL is not a valid Redis URL ({redacted(redis_url)}): {error}") from None
    return redis_url


def writable_dir(name: str, path: Path) -> None:
    """`path` exists (made if need be) and a file can be written in it; `SettingsError` naming
    the setting otherwise. Checked at the start: found out later, it was a traceback."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise SettingsError(f"{name}: cannot write in {str(path)!r}: {error.strerror or error}") from None


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, or SQLite in memory)."""
    prefix = "sqlite+aiosqlite:///"
    if not database_url.startswith(prefix):
        return None
    path = database_url[len(prefix) :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _secret_key(env: Mapping[str, str], var_dir: Path) -> str:
    """SECRET_KEY, or one generated once and kept under var/ so restarts keep tokens valid."""
    given = env.get("SECRET_KEY", "")
    if given:
        if len(given) < 16:
            raise SettingsError("SECRET_KEY must be at least 16 characters")
        return given
    try:
        return _kept_key(var_dir)
    except OSError as error:
        raise SettingsError(
            f"TELEROUNDS_VAR_DIR: cannot keep the generated secret key in {str(var_dir)!r}: {error.strerror or error}"
            " (or set SECRET_KEY)"
        ) from None


def _kept_key(var_dir: Path) -> str:
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: when two instances start at once, the first key written wins for both.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def _trust_roots(env: Mapping[str, str]) -> Path | None:
    """SIGNING_TRUST_ROOTS: a PEM file holding at least one certificate, checked at the start."""
    raw = env.get("SIGNING_TRUST_ROOTS", "")
    if not raw:
        return None
    path = Path(raw)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise SettingsError(f"SIGNING_TRUST_ROOTS: cannot read {raw!r}: {error.strerror or error}") from None
    if b"-----BEGIN CERTIFICATE-----" not in text:
        raise SettingsError(f"SIGNING_TRUST_ROOTS: {raw!r} holds no PEM certificate")
    return path


def _tsa_url(env: Mapping[str, str]) -> str:
    url = env.get("TSA_URL", "").strip()
    if url and (not url.startswith(("http://", "https://")) or not urlsplit(url).hostname):
        raise SettingsError(f"TSA_URL must be an http:// or https:// address, got {url!r}")
    return url


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from `env` (the process environment by default)."""
    env = os.environ if env is None else env
    var_dir = Path(env.get("TELEROUNDS_VAR_DIR", "var"))
    port = _int(env, "PORT", 8080, 0, 65535)
    redis_url = _redis_url(env)
    database_url = normalize_database_url(
        env.get("DATABASE_URL") or f"sqlite:///{(var_dir / 'telerounds.db').as_posix()}"
    )
    origins = _list(env, "ALLOWED_ORIGINS")
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise SettingsError(f"ALLOWED_ORIGINS entries must start with http:// or https://, got {origin!r}")
    # A relative BLOB_DIR is taken from the working directory, as TELEROUNDS_VAR_DIR is.
    raw_blob_dir = env.get("BLOB_DIR", "")
    if "\x00" in raw_blob_dir:
        raise SettingsError("BLOB_DIR must be a folder's path, got one with a NUL character")
    blob_dir = Path(raw_blob_dir or var_dir / "blobs")
    signing_key = env.get("SIGNING_KEY", "")
    if signing_key and len(signing_key) < 16:
        raise SettingsError("SIGNING_KEY must be at least 16 characters")
    demo_password = env.get("TELEROUNDS_DEMO_PASSWORD", "demo")
    if not demo_password:
        raise SettingsError("TELEROUNDS_DEMO_PASSWORD must not be empty")
    return Settings(
        host=env.get("HOST", "127.0.0.1") or "127.0.0.1",
        port=port,
        redis_url=redis_url,
        database_url=database_url,
        secret_key=_secret_key(env, var_dir),
        demo_password=demo_password,
        allowed_origins=origins,
        metrics_token=env.get("METRICS_TOKEN", ""),
        var_dir=var_dir,
        blob_dir=blob_dir,
        token_ttl_s=_int(env, "TOKEN_TTL_S", 12 * 3600, 60, 12 * 3600),
        login_attempts_per_minute=_int(env, "LOGIN_ATTEMPTS_PER_MINUTE", 10, 1, 10000),
        login_address_attempts_per_minute=_int(env, "LOGIN_ADDRESS_ATTEMPTS_PER_MINUTE", 50, 1, 100000),
        trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
        rate_events_burst=_int(env, "RATE_EVENTS_BURST", 200, 1, 1_000_000),
        rate_events_per_s=_float(env, "RATE_EVENTS_PER_S", 50.0, 0.001, 1_000_000),
        demo_data=_bool(env, "TELEROUNDS_DEMO_DATA", True),
        stun_urls=_list(env, "STUN_URLS"),
        turn_urls=_list(env, "TURN_URLS"),
        turn_secret=env.get("TURN_SECRET", ""),
        turn_ttl_s=_int(env, "TURN_TTL_S", 3600, 10, 7 * 24 * 3600),
        ice_transport_policy=_choice(env, "ICE_TRANSPORT_POLICY", "all", ("all", "relay")),
        offer_timeout_routine_s=_float(env, "OFFER_TIMEOUT_ROUTINE_S", 30.0, 0.1, 3600),
        offer_timeout_urgent_s=_float(env, "OFFER_TIMEOUT_URGENT_S", 15.0, 0.1, 3600),
        offer_timeout_emergency_s=_float(env, "OFFER_TIMEOUT_EMERGENCY_S", 30.0, 0.1, 3600),
        wait_alert_s=_float(env, "WAIT_ALERT_S", 600.0, 1.0, 7 * 24 * 3600),
        board_update_interval_s=_float(env, "BOARD_UPDATE_INTERVAL_S", 0.5, 0.05, 60),
        board_refresh_s=_float(env, "BOARD_REFRESH_S", 15.0, 1.0, 3600),
        reconnect_grace_s=_float(env, "RECONNECT_GRACE_S", 20.0, 0.0, 600),
        presence_ttl_s=_int(env, "PRESENCE_TTL_S", 30, 2, 3600),
        precall_max=_int(env, "PRECALL_MAX", 4, 0, 1000),
        precall_seconds=_float(env, "PRECALL_SECONDS", 60.0, 1.0, 3600),
        max_recordings=_int(env, "MAX_RECORDINGS", Settings.max_recordings, 0, 1000),
        recording_retention_years=_int(env, "RECORDING_RETENTION_YEARS", 10, 10, 100),
        rounds_per_hospital=_int(env, "ROUNDS_PER_HOSPITAL", 50, 1, 100_000),
        round_max_patients=_int(env, "ROUND_MAX_PATIENTS", 40, 1, 1000),
        notes_per_consult=_int(env, "NOTES_PER_CONSULT", 1000, 1, 1_000_000),
        note_bytes_per_consult=_int(env, "NOTE_BYTES_PER_CONSULT", 2_000_000, 100_000, 1_000_000_000),
        note_page_size=_int(env, "NOTE_PAGE_SIZE", 100, 1, 10_000),
        note_page_bytes=_int(env, "NOTE_PAGE_BYTES", 256 * 1024, 1024, 100 * 1024 * 1024),
        attachment_bytes_per_consult=_int(
            env, "ATTACHMENT_BYTES_PER_CONSULT", 100 * 1024 * 1024, 1024, 1024 * 1024 * 1024 * 1024
        ),
        attachment_bytes_per_user_day=_int(
            env, "ATTACHMENT_BYTES_PER_USER_DAY", 200 * 1024 * 1024, 1024, 1024 * 1024 * 1024 * 1024
        ),
        max_open_requests=_int(env, "MAX_OPEN_REQUESTS", 3, 1, 1000),
        max_open_emergencies=_int(env, "MAX_OPEN_EMERGENCIES", 1, 1, 1000),
        max_sockets_per_user=_int(env, "MAX_SOCKETS_PER_USER", 8, 1, 10000),
        http_header_timeout_s=_float(env, "HTTP_HEADER_TIMEOUT_S", 10.0, 0.5, 3600),
        signing_key=signing_key,
        signing_trust_roots=_trust_roots(env),
        tsa_url=_tsa_url(env),
    )
