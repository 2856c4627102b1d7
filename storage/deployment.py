"""Wiring: builds the ledger, stores and keys of one deployment from its configuration.

The app factory and the CLI both call ``open_deployment``, so the HTTP API and the command
line act through the same objects.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlparse

from sqlalchemy import Engine

from custody import key_rotation
from custody.bundle import Bundles
from custody.case_export import CaseExports
from custody.errors import NotFound
from custody.events import SYSTEM, Actor
from custody.handling import Handling
from custody.intake import Intake, IntakeSettings
from custody.interfaces import Clock, ObjectStore
from custody.keys import KeyRing
from custody.ledger import Ledger, utc_now
from custody.note import is_valid_key_name
from custody.order_deadlines import PeriodRule
from custody.order_desk import OrderDesk
from custody.outbound import OutboundPolicy
from custody.principals import OPERATOR, Principals
from custody.providers import Providers
from custody.sign_in import SignIn
from custody.witnessing import Cosignatures
from storage import keyfiles
from storage.config import Config, ConfigError, load_config, render_config
from storage.filesystem import FilesystemObjectStore
from storage.private_files import PRIVATE_FOLDER, make_private
from storage.sql.database import create_database_engine, migrate, schema_is_current
from storage.sql.evidence import SqlEvidenceStore
from storage.sql.ledger import SqlLedgerStore
from storage.sql.orders import SqlNoticeStore, SqlOrderStore, SqlProviderStore
from storage.sql.principals import SqlPrincipalStore
from storage.sql.sign_in import SqlSignInStore

_ORIGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_/-]{0,200}$")


@dataclass
class Deployment:
    """Everything one Custos deployment acts through."""

    config: Config
    engine: Engine
    objects: ObjectStore
    key_file: keyfiles.KeyRingFile
    ledger: Ledger
    principals: Principals
    evidence: SqlEvidenceStore
    intake: Intake
    handling: Handling
    providers: Providers
    orders: OrderDesk
    bundles: Bundles
    case_exports: CaseExports
    sign_in: SignIn
    cosignatures: Cosignatures

    @property
    def keys(self) -> KeyRing:
        """The key ring as it is now (reloaded after a rotation)."""
        return self.key_file()

    def close(self) -> None:
        self.engine.dispose()


def open_object_store(config: Config) -> ObjectStore:
    """The filesystem store for ``file://PATH``, the S3 store for ``s3://BUCKET/PREFIX``."""
    url = urlparse(config.store)
    if url.scheme == "file":
        return FilesystemObjectStore(url.netloc + url.path, retention_days=config.retention_days)
    if url.scheme == "s3" and url.netloc:
        from storage.s3 import S3ObjectStore  # boto3 loads in a tenth of a second: on need

        return S3ObjectStore(
            url.netloc,
            url.path,
            endpoint_url=config.s3_endpoint_url,
            region=config.s3_region,
            part_size=config.multipart_part_size,
            retention_mode=config.retention_mode,
            retention_days=config.retention_days,
            max_attempts=config.s3_max_attempts,
            timeout=config.s3_timeout,
        )
    raise ConfigError(
        f"unsupported object store {config.store!r}: use file://PATH or s3://BUCKET/PREFIX"
    )


def open_deployment(config: Config | None = None, *, clock: Clock = utc_now) -> Deployment:
    """Open an initialised deployment; ConfigError says what is missing."""
    config = config or load_config()
    engine = create_database_engine(config.database_url)
    if not schema_is_current(engine):
        engine.dispose()
        raise ConfigError(
            f"the database at {config.database_url} is not initialised or not migrated: "
            "run `custos init`"
        )
    try:
        keys = keyfiles.open_keyring(config)
    except ConfigError:
        engine.dispose()
        raise
    objects = open_object_store(config)
    ledger = Ledger(
        SqlLedgerStore(engine),
        objects,
        keys,
        clock=clock,
        checkpoint_interval=config.checkpoint_interval,
    )
    provider_store = SqlProviderStore(engine)
    principals = Principals(SqlPrincipalStore(engine), ledger, provider_store)
    evidence = SqlEvidenceStore(engine)
    intake = Intake(
        evidence,
        ledger,
        objects,
        IntakeSettings(
            digests=config.digests,
            max_upload_bytes=config.max_upload_bytes,
            session_ttl=timedelta(seconds=config.upload_session_ttl),
        ),
    )
    handling = Handling(evidence, ledger, objects)
    providers = Providers(
        provider_store, ledger, OutboundPolicy.from_allowance(config.outbound_allow)
    )
    orders = OrderDesk(
        SqlOrderStore(engine),
        provider_store,
        SqlNoticeStore(engine),
        ledger,
        intake,
        period_rule=PeriodRule(config.period_rule),
    )
    cosignatures = Cosignatures(objects)
    bundles = Bundles(
        ledger,
        evidence,
        objects,
        orders.store,
        receipts=intake.receipt,
        manifests=intake.stored_manifest,
        cosigned=cosignatures.cosigned,
    )
    sign_in = SignIn(
        SqlSignInStore(engine),
        principals,
        clock,
        idle=timedelta(seconds=config.session_idle),
        absolute=timedelta(seconds=config.session_max_age),
        second_factor_roles=frozenset(config.totp_roles),
    )
    return Deployment(
        config,
        engine,
        objects,
        keys,
        ledger,
        principals,
        evidence,
        intake,
        handling,
        providers,
        orders,
        bundles,
        CaseExports(ledger, evidence),
        sign_in,
        cosignatures,
    )


@dataclass(frozen=True)
class InitResult:
    deployment: Deployment
    created: bool
    operator_token: str | None


def initialise(config: Config, origin: str | None = None) -> InitResult:
    """Create (or leave as it is) a deployment: config file, schema, key, the operator; and
    narrow its files to private modes (``storage.private_files``).

    Running it again changes nothing else: an existing config, key or operator is kept.
    """
    config.home.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    created = False
    if not config.config_file.exists():
        chosen = origin or config.origin or f"custos.local/{secrets.token_hex(4)}"
        if not (_ORIGIN.match(chosen) and is_valid_key_name(chosen)):
            raise ConfigError(f"origin {chosen!r} is not a valid log origin (e.g. example.org/log)")
        config = Config(**{**config.__dict__, "origin": chosen})
        config.config_file.write_text(render_config(config), "utf-8")
        created = True
    elif origin and origin != config.origin:
        raise ConfigError(
            f"{config.config_file} already names origin {config.origin!r}; it cannot change"
        )
    engine = create_database_engine(config.database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    if not keyfiles.has_keyring(config):
        keyfiles.write_ring(config, [{"file": keyfiles.new_key_file(config), "retired_at": None}])
        created = True
    from storage.s3 import S3ObjectStore, ensure_bucket

    if isinstance(store := open_object_store(config), S3ObjectStore):
        ensure_bucket(store.client, store.bucket, config.s3_region)
    deployment = open_deployment(config)
    # The home, keys, database and stored objects are the deployment's account's alone.
    make_private(config)
    token = None
    try:
        deployment.principals.get(OPERATOR)
    except NotFound:
        _, token = deployment.principals.add(OPERATOR, "admin", SYSTEM)
        created = True
    return InitResult(deployment, created, token)


def rotate_key(deployment: Deployment, by: Actor) -> tuple[str, str, int]:
    """Rotate the deployment's key (custody's rule and event); the old and new verifier keys
    and the index of the ``key.rotated`` event."""
    done = key_rotation.rotate_key(deployment.key_file, deployment.ledger, by)
    return done.old_key, done.new_key, done.index
