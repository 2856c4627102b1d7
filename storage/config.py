"""Configuration: ``custos.toml`` in the home, overridden by ``CUSTOS_*`` environment variables.

The embedded default needs nothing but the package: SQLite at ``<home>/custos.db`` and a
filesystem object store at ``<home>/objects``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from custody.addresses import is_email_address
from custody.errors import CustosError
from custody.notices import DEFAULT_LEASE
from custody.outbound import outbound_allowance
from custody.principals import ROLES

CONFIG_FILE = "custos.toml"
DEFAULT_HOME = "./var"
SUPPORTED_DIGESTS = ("sha256", "sha512", "sha3_256", "sha1", "md5")
RETENTION_MODES = ("GOVERNANCE", "COMPLIANCE")
LOG_FORMATS = ("json", "text")
PERIOD_RULES = ("regulation_1182_71", "exact")
# How alerts reach the mail server: STARTTLS on a plain connection, TLS from the start, or
# in the clear (a server on the same host).
SMTP_SECURITY = ("starttls", "tls", "none")
MiB = 1024 * 1024
# S3 multipart limits: every part but the last is at least 5 MiB and at most 5 GiB.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
# One attempt to deliver a notice must end well within the lease its worker holds on it.
MAX_NOTIFY_TIMEOUT = DEFAULT_LEASE / 5
# Threads a `custos serve` worker answers requests on; each may hold a database connection.
MAX_WORKER_THREADS = 64


class ConfigError(CustosError):
    """The configuration is missing, malformed or contradicts itself."""


@dataclass(frozen=True)
class Config:
    """One deployment's settings, resolved."""

    home: Path
    origin: str = ""
    database_url: str = ""
    store: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_max_attempts: int = 5
    s3_timeout: float = 20.0
    key_passphrase: str | None = field(default=None, repr=False)
    digests: tuple[str, ...] = ("sha256",)
    max_upload_bytes: int = 64 * 1024**3
    checkpoint_interval: float = 1.0
    retention_mode: str = "GOVERNANCE"
    retention_days: int = 0
    multipart_part_size: int = 16 * MiB
    staging_max_age: float = 86400.0
    upload_session_ttl: float = 86400.0
    notify_interval: float = 5.0
    notify_timeout: float = 10.0
    notify_max_attempts: int = 10
    notify_base_delay: float = 30.0
    notify_max_delay: float = 3600.0
    request_timeout: float = 30.0
    worker_threads: int = 8
    auth_failures_per_minute: int = 20
    log_format: str = "json"
    trust_proxy: int = 0
    max_body_bytes: int = MiB
    outbound_allow: tuple[str, ...] = ()
    log_query_strings: bool = False
    # How periods in days run for UN and Budapest orders (the issuing State's law); EU orders
    # always follow Regulation 1182/71.
    period_rule: str = "regulation_1182_71"
    public_url: str = ""
    session_idle: float = 1800.0
    session_max_age: float = 43200.0
    page_upload_max_bytes: int = 2 * 1024**3
    page_ingest_max_bytes: int = 1024**3
    totp_roles: tuple[str, ...] = ()
    # E-mail alerts (custody.alerts): off while smtp_host is empty.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str = ""
    smtp_timeout: float = 10.0
    alert_due_within: float = 86400.0
    witnesses: tuple[str, ...] = ()
    """Each ``<URL prefix> <witness key>``: the C2SP tlog-witness witnesses the log asks to
    cosign its checkpoints (custody/witnessing.py)."""

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.home / 'custos.db'}")
        if not self.store:
            object.__setattr__(self, "store", f"file://{self.home / 'objects'}")
        unknown = set(self.digests) - set(SUPPORTED_DIGESTS)
        if unknown or "sha256" not in self.digests:
            raise ConfigError(
                f"digests must include sha256 and be among {', '.join(SUPPORTED_DIGESTS)}"
            )
        if self.checkpoint_interval < 0 or self.max_upload_bytes <= 0 or self.max_body_bytes <= 0:
            raise ConfigError(
                "checkpoint_interval, max_upload_bytes and max_body_bytes must be positive"
            )
        try:
            outbound_allowance(self.outbound_allow)
        except ValueError as exc:
            raise ConfigError(f"outbound_allow: {exc}") from None
        if self.s3_max_attempts < 1 or self.s3_timeout <= 0:
            raise ConfigError("s3_max_attempts must be 1 or more and s3_timeout positive")
        if self.retention_mode not in RETENTION_MODES:
            raise ConfigError(f"retention_mode must be one of {', '.join(RETENTION_MODES)}")
        if self.retention_days < 0:
            raise ConfigError("retention_days must be 0 (no retention) or more")
        if not MIN_PART_SIZE <= self.multipart_part_size <= MAX_PART_SIZE:
            raise ConfigError(
                f"multipart_part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes"
            )
        if self.staging_max_age <= 0 or self.upload_session_ttl <= 0:
            raise ConfigError("staging_max_age and upload_session_ttl must be positive")
        if self.notify_interval <= 0 or not 0 < self.notify_timeout <= MAX_NOTIFY_TIMEOUT:
            raise ConfigError(
                f"notify_interval must be positive and notify_timeout between 0 and "
                f"{MAX_NOTIFY_TIMEOUT:g} seconds"
            )
        if self.notify_max_attempts < 1 or not 0 < self.notify_base_delay <= self.notify_max_delay:
            raise ConfigError(
                "notify_max_attempts must be 1 or more, and notify_base_delay positive and at "
                "most notify_max_delay"
            )
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"log_format must be one of {', '.join(LOG_FORMATS)}")
        if self.period_rule not in PERIOD_RULES:
            raise ConfigError(f"period_rule must be one of {', '.join(PERIOD_RULES)}")
        if self.trust_proxy < 0:
            raise ConfigError("trust_proxy must be 0 (no proxy) or the number of proxies in front")
        if self.public_url and not re.match(r"^https?://[^/?#]+(/[^?#]*)?$", self.public_url):
            raise ConfigError("public_url is the http(s) URL people reach Custos at")
        if not 0 < self.session_idle <= self.session_max_age or self.page_upload_max_bytes <= 0:
            raise ConfigError(
                "session_idle must be positive and at most session_max_age, and "
                "page_upload_max_bytes positive"
            )
        if self.page_ingest_max_bytes <= 0:
            raise ConfigError("page_ingest_max_bytes must be positive")
        unknown_roles = set(self.totp_roles) - set(ROLES)
        if unknown_roles:
            raise ConfigError(
                f"totp_roles: unknown roles {', '.join(sorted(unknown_roles))}; "
                f"roles are {', '.join(ROLES)}"
            )
        self._check_smtp()
        if not 1 <= self.worker_threads <= MAX_WORKER_THREADS:
            raise ConfigError(f"worker_threads must be between 1 and {MAX_WORKER_THREADS}")
        self._check_witnesses()
        if self.request_timeout <= 0 or self.auth_failures_per_minute < 0:
            raise ConfigError(
                "request_timeout must be positive and auth_failures_per_minute 0 (no limit) or more"
            )

    def _check_witnesses(self) -> None:
        if not self.witnesses:
            return  # the witnessing code (and the verifier it uses) loads only where it is used
        from custody.witnessing import parse_witness

        for entry in self.witnesses:
            try:
                parse_witness(entry)
            except ValueError as exc:
                raise ConfigError(f"witnesses: {exc}") from None

    def _check_smtp(self) -> None:
        if self.smtp_security not in SMTP_SECURITY:
            raise ConfigError(f"smtp_security must be one of {', '.join(SMTP_SECURITY)}")
        if not 0 < self.smtp_port < 65536 or not 0 < self.smtp_timeout <= MAX_NOTIFY_TIMEOUT:
            raise ConfigError(
                f"smtp_port must be a TCP port and smtp_timeout between 0 and "
                f"{MAX_NOTIFY_TIMEOUT:g} seconds"
            )
        if self.alert_due_within <= 0:
            raise ConfigError("alert_due_within must be positive (seconds)")
        if self.smtp_host and not is_email_address(self.smtp_from):
            raise ConfigError("smtp_from must be the address alerts come from (local@domain)")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ConfigError("smtp_username and smtp_password are set together, or neither")

    @property
    def alerts_on(self) -> bool:
        """Whether e-mail alerts are sent (an SMTP server is configured)."""
        return bool(self.smtp_host)

    @property
    def config_file(self) -> Path:
        return self.home / CONFIG_FILE

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"


_ENV = {
    "CUSTOS_DATABASE_URL": "database_url",
    "CUSTOS_STORE": "store",
    "CUSTOS_S3_ENDPOINT_URL": "s3_endpoint_url",
    "CUSTOS_S3_REGION": "s3_region",
    "CUSTOS_S3_MAX_ATTEMPTS": "s3_max_attempts",
    "CUSTOS_S3_TIMEOUT": "s3_timeout",
    "CUSTOS_ORIGIN": "origin",
    "CUSTOS_KEY_PASSPHRASE": "key_passphrase",
    "CUSTOS_DIGESTS": "digests",
    "CUSTOS_MAX_UPLOAD_BYTES": "max_upload_bytes",
    "CUSTOS_CHECKPOINT_INTERVAL": "checkpoint_interval",
    "CUSTOS_RETENTION_MODE": "retention_mode",
    "CUSTOS_RETENTION_DAYS": "retention_days",
    "CUSTOS_MULTIPART_PART_SIZE": "multipart_part_size",
    "CUSTOS_STAGING_MAX_AGE": "staging_max_age",
    "CUSTOS_UPLOAD_SESSION_TTL": "upload_session_ttl",
    "CUSTOS_NOTIFY_INTERVAL": "notify_interval",
    "CUSTOS_NOTIFY_TIMEOUT": "notify_timeout",
    "CUSTOS_NOTIFY_MAX_ATTEMPTS": "notify_max_attempts",
    "CUSTOS_NOTIFY_BASE_DELAY": "notify_base_delay",
    "CUSTOS_NOTIFY_MAX_DELAY": "notify_max_delay",
    "CUSTOS_REQUEST_TIMEOUT": "request_timeout",
    "CUSTOS_WORKER_THREADS": "worker_threads",
    "CUSTOS_AUTH_FAILURES_PER_MINUTE": "auth_failures_per_minute",
    "CUSTOS_LOG_FORMAT": "log_format",
    "CUSTOS_TRUST_PROXY": "trust_proxy",
    "CUSTOS_MAX_BODY_BYTES": "max_body_bytes",
    "CUSTOS_OUTBOUND_ALLOW": "outbound_allow",
    "CUSTOS_LOG_QUERY_STRINGS": "log_query_strings",
    "CUSTOS_PERIOD_RULE": "period_rule",
    "CUSTOS_PUBLIC_URL": "public_url",
    "CUSTOS_SESSION_IDLE": "session_idle",
    "CUSTOS_SESSION_MAX_AGE": "session_max_age",
    "CUSTOS_PAGE_UPLOAD_MAX_BYTES": "page_upload_max_bytes",
    "CUSTOS_PAGE_INGEST_MAX_BYTES": "page_ingest_max_bytes",
    "CUSTOS_TOTP_ROLES": "totp_roles",
    "CUSTOS_WITNESSES": "witnesses",
    "CUSTOS_SMTP_HOST": "smtp_host",
    "CUSTOS_SMTP_PORT": "smtp_port",
    "CUSTOS_SMTP_SECURITY": "smtp_security",
    "CUSTOS_SMTP_USERNAME": "smtp_username",
    "CUSTOS_SMTP_PASSWORD": "smtp_password",
    "CUSTOS_SMTP_FROM": "smtp_from",
    "CUSTOS_SMTP_TIMEOUT": "smtp_timeout",
    "CUSTOS_ALERT_DUE_WITHIN": "alert_due_within",
}
# Secrets come from the environment only, never from the file.
_FILE_KEYS = set(_ENV.values()) - {"key_passphrase", "smtp_password"}


def _digest_name(name: str) -> str:
    """``SHA-256``, ``sha_256`` and ``sha256`` all name sha256; ``sha3-256`` is sha3_256."""
    plain = name.strip().lower().replace("-", "").replace("_", "")
    return "sha3_256" if plain == "sha3256" else plain


def _typed(name: str, value: Any) -> Any:
    try:
        if name == "digests":
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(_digest_name(d) for d in items if d.strip())
        if name == "outbound_allow":
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(item).strip() for item in items if str(item).strip())
        if name == "log_query_strings":
            return _boolean(value)
        if name == "totp_roles":
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(r.strip() for r in items if r.strip())
        if name == "witnesses":
            entries = value.split(",") if isinstance(value, str) else list(value)
            if not all(isinstance(e, str) for e in entries):
                raise TypeError("witnesses are text")
            return tuple(" ".join(e.split()) for e in entries if e.strip())
        if name in (
            "max_upload_bytes",
            "retention_days",
            "multipart_part_size",
            "notify_max_attempts",
            "auth_failures_per_minute",
            "trust_proxy",
            "s3_max_attempts",
            "max_body_bytes",
            "page_upload_max_bytes",
            "page_ingest_max_bytes",
            "worker_threads",
            "smtp_port",
        ):
            return int(value)
        if name in (
            "checkpoint_interval",
            "staging_max_age",
            "upload_session_ttl",
            "notify_interval",
            "notify_timeout",
            "notify_base_delay",
            "notify_max_delay",
            "request_timeout",
            "s3_timeout",
            "session_idle",
            "session_max_age",
            "smtp_timeout",
            "alert_due_within",
        ):
            return float(value)
        if name == "retention_mode" and isinstance(value, str):
            return value.strip().upper()
        if name in ("log_format", "period_rule", "smtp_security") and isinstance(value, str):
            return value.strip().lower()
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: cannot read {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected text, got {value!r}")
    return value


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def home_from_env(home: str | os.PathLike[str] | None = None) -> Path:
    return Path(home or os.environ.get("CUSTOS_HOME") or DEFAULT_HOME).absolute()


def load_config(
    home: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read ``custos.toml`` (if present) from the home, then apply the environment."""
    environ = os.environ if environ is None else environ
    base = home_from_env(home or environ.get("CUSTOS_HOME"))
    values: dict[str, Any] = {}
    path = base / CONFIG_FILE
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        unknown = set(raw) - _FILE_KEYS
        if unknown:
            raise ConfigError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
        values.update({k: _typed(k, v) for k, v in raw.items()})
    for variable, name in _ENV.items():
        if environ.get(variable):
            values[name] = _typed(name, environ[variable])
    return Config(home=base, **values)


def with_overrides(config: Config, **changes: Any) -> Config:
    return replace(config, **changes)


def render_config(config: Config) -> str:
    """The ``custos.toml`` that ``custos init`` writes: the origin and the store it chose, and
    every other setting at its current value, commented where it is the default."""
    default = Config(home=config.home)
    lines = ["# Custos deployment. CUSTOS_* environment variables override these settings."]
    for name in sorted(_FILE_KEYS):
        value = getattr(config, name)
        if value is None:
            continue
        differs = value != getattr(default, name)
        if isinstance(value, tuple):
            value = ",".join(value)
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        else:
            rendered = f'"{value}"' if isinstance(value, str) else str(value)
        prefix = "" if name == "origin" or differs else "# "
        lines.append(f"{prefix}{name} = {rendered}")
    return "\n".join(lines) + "\n"
