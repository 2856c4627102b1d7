"""Wiring: builds the ledger, stores and keys of one deployment from its configuration.

The app factory and the CLI both call ``open_deployment``, so the HTTP API and the command
line act through the same objects.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from custody import key_rotation
from custody.errors import NotFound
from custody.events import SYSTEM, Actor
from custody.interfaces import Clock, ObjectStore
from custody.ledger import utc_now
from custody.note import is_valid_key_name
from custody.principals import OPERATOR
from storage import keyfiles
from storage.config import Config, ConfigError, load_config, render_config
from storage.filesystem import FilesystemObjectStore
from storage.private_files import PRIVATE_FOLDER, make_private
from storage.sql.database import create_database_engine, migrate, schema_is_current

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from custody.alerts import Alerts
    from custody.bundle import Bundles
    from custody.case_export import CaseExports
    from custody.cases import Cases
    from custody.disclosure import Disclosure
    from custody.handling import Handling
    from custody.intake import Intake
    from custody.keys import KeyRing
    from custody.ledger import Ledger
    from custody.order_desk import OrderDesk
    from custody.principals import Principals
    from custody.providers import Providers
    from custody.sign_in import SignIn
    from custody.witnessing import Cosignatures
    from storage.sql.evidence import SqlEvidenceStore
    from storage.sql.orders import SqlProviderStore
    from storage.sql.principals import SqlPrincipalStore

_ORIGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_/-]{0,200}$")


@dataclass
class Deployment:
    """Everything one Custos deployment acts through.

    Each service is built, and its modules imported, when first used: a command that lists
    principals loads neither the order desk nor the holiday calendars.
    """

    config: Config
    engine: Engine
    objects: ObjectStore
    key_file: keyfiles.KeyRingFile
    clock: Clock = utc_now

    @property
    def keys(self) -> KeyRing:
        """The key ring as it is now (reloaded after a rotation)."""
        return self.key_file()

    @cached_property
    def ledger(self) -> Ledger:
        from custody.ledger import Ledger
        from storage.sql.ledger import SqlLedgerStore

        return Ledger(
            SqlLedgerStore(self.engine),
            self.objects,
            self.key_file,
            clock=self.clock,
            checkpoint_interval=self.config.checkpoint_interval,
        )

    @cached_property
    def provider_store(self) -> SqlProviderStore:
        from storage.sql.orders import SqlProviderStore

        return SqlProviderStore(self.engine)

    @cached_property
    def principal_store(self) -> SqlPrincipalStore:
        from storage.sql.principals import SqlPrincipalStore

        return SqlPrincipalStore(self.engine)

    @cached_property
    def principals(self) -> Principals:
        from custody.principals import Principals

        return Principals(self.principal_store, self.ledger, self.provider_store)

    @cached_property
    def alerts(self) -> Alerts | None:
        """The e-mail alerts, when an SMTP host is configured."""
        if not self.config.alerts_on:
            return None
        from custody.alerts import Alerts
        from storage.sql.alerts import SqlAlertStore

        return Alerts(
            SqlAlertStore(self.engine),
            self.principal_store,
            self.provider_store,
            public_url=self.config.public_url,
            due_within=timedelta(seconds=self.config.alert_due_within),
        )

    @cached_property
    def evidence(self) -> SqlEvidenceStore:
        from storage.sql.evidence import SqlEvidenceStore

        return SqlEvidenceStore(self.engine)

    @cached_property
    def cases(self) -> Cases:
        from custody.cases import Cases
        from storage.sql.cases import SqlCaseStore

        return Cases(SqlCaseStore(self.engine), self.principal_store, self.ledger)

    @cached_property
    def intake(self) -> Intake:
        from custody.intake import Intake, IntakeSettings

        return Intake(
            self.evidence,
            self.ledger,
            self.objects,
            IntakeSettings(
                digests=self.config.digests,
                max_upload_bytes=self.config.max_upload_bytes,
                session_ttl=timedelta(seconds=self.config.upload_session_ttl),
            ),
            self.cases,
        )

    @cached_property
    def handling(self) -> Handling:
        from custody.handling import Handling

        return Handling(self.evidence, self.ledger, self.objects, self.cases)

    @cached_property
    def disclosure(self) -> Disclosure:
        from custody.disclosure import Disclosure

        return Disclosure(self.evidence, self.ledger)

    @cached_property
    def providers(self) -> Providers:
        from custody.outbound import OutboundPolicy
        from custody.providers import Providers

        return Providers(
            self.provider_store,
            self.ledger,
            OutboundPolicy.from_allowance(self.config.outbound_allow),
        )

    @cached_property
    def orders(self) -> OrderDesk:
        from custody.order_deadlines import PeriodRule
        from custody.order_desk import OrderDesk
        from custody.outbound import OutboundPolicy
        from storage.sql.orders import SqlNoticeStore, SqlOrderStore

        return OrderDesk(
            SqlOrderStore(self.engine),
            self.provider_store,
            SqlNoticeStore(self.engine),
            self.ledger,
            self.intake,
            self.cases,
            period_rule=PeriodRule(self.config.period_rule),
            alerts=self.alerts,
            outbound=OutboundPolicy.from_allowance(self.config.outbound_allow),
        )

    @cached_property
    def cosignatures(self) -> Cosignatures:
        from custody.witnessing import Cosignatures

        return Cosignatures(self.objects)

    @cached_property
    def bundles(self) -> Bundles:
        from custody.bundle import Bundles

        return Bundles(
            self.ledger,
            self.evidence,
            self.objects,
            self.orders.store,
            handling=self.handling,
            receipts=self.intake.receipt,
            manifests=self.intake.stored_manifest,
            names=self.principals.names,
            cosigned=self.cosignatures.cosigned,
        )

    @cached_property
    def case_exports(self) -> CaseExports:
        from custody.case_export import CaseExports

        return CaseExports(self.ledger, self.evidence, self.cases)

    @cached_property
    def sign_in(self) -> SignIn:
        from custody.sign_in import SignIn
        from storage.sql.sign_in import SqlSignInStore

        return SignIn(
            SqlSignInStore(self.engine),
            self.principals,
            self.clock,
            idle=timedelta(seconds=self.config.session_idle),
            absolute=timedelta(seconds=self.config.session_max_age),
            second_factor_roles=frozenset(self.config.totp_roles),
        )

    def build_services(self) -> None:
        """Build every service now: a server does, before its threads share them."""
        for name in _SERVICES:
            getattr(self, name)

    def close(self) -> None:
        self.engine.dispose()


_SERVICES = [name for name, value in vars(Deployment).items() if isinstance(value, cached_property)]


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
    return Deployment(config, engine, open_object_store(config), keys, clock)


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
    # Cases a migration made (0010, from the old case strings) get their events now.
    deployment.cases.record_migrated()
    return InitResult(deployment, created, token)


def rotate_key(deployment: Deployment, by: Actor) -> tuple[str, str, int]:
    """Rotate the deployment's key (custody's rule and event); the old and new verifier keys
    and the index of the ``key.rotated`` event."""
    done = key_rotation.rotate_key(deployment.key_file, deployment.ledger, by)
    return done.old_key, done.new_key, done.index
