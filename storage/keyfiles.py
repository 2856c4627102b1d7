"""The service keys on disk: PKCS#8 PEM files in ``<home>/keys`` and a ``keyring.json`` that
orders them and records when each old one was retired.

A key is encrypted with ``CUSTOS_KEY_PASSPHRASE`` when that is set; an unencrypted key works
but is warned about at start-up.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.key_rotation import NewKey
from custody.keys import KeyRing, ServiceKey
from custody.note import NoteSigner
from storage.config import Config, ConfigError

log = logging.getLogger("custos.keys")
KEYRING_FILE = "keyring.json"


def _write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    temp = path.with_name(f".tmp-{secrets.token_hex(6)}-{path.name}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _pem(key: Ed25519PrivateKey, passphrase: str | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def has_keyring(config: Config) -> bool:
    return (config.keys_dir / KEYRING_FILE).exists()


def open_keyring(config: Config) -> KeyRingFile:
    """The signing keys of an initialised home; ConfigError says what is missing. Reading
    them needs no database, so ``custos log key`` opens none."""
    if not has_keyring(config):
        raise ConfigError(f"no signing key in {config.keys_dir}: run `custos init`")
    if not config.origin:
        raise ConfigError(f"no origin in {config.config_file}: run `custos init`")
    return KeyRingFile(config, config.origin)


def _read_ring(config: Config) -> list[dict[str, object]]:
    path = config.keys_dir / KEYRING_FILE
    try:
        ring = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no signing key in {config.keys_dir}: run `custos init`") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(ring, list) or not ring:
        raise ConfigError(f"{path}: not a list of keys")
    return ring


def new_key_file(config: Config) -> str:
    """Generate a key and write its PEM file (not yet in the ring); returns the file name."""
    config.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"ed25519-{secrets.token_hex(4)}.pem"
    key = Ed25519PrivateKey.generate()
    _write_atomically(config.keys_dir / name, _pem(key, config.key_passphrase))
    return name


def write_ring(config: Config, entries: list[dict[str, object]]) -> None:
    _write_atomically(
        config.keys_dir / KEYRING_FILE, (json.dumps(entries, indent=2) + "\n").encode(), 0o600
    )


def load_signer(config: Config, file: str, origin: str) -> NoteSigner:
    """Load one key file of the ring as a signer named by the origin."""
    path = config.keys_dir / file
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    encrypted = b"ENCRYPTED" in pem.split(b"\n", 1)[0]
    if encrypted and not config.key_passphrase:
        raise ConfigError(f"{path} is encrypted: set CUSTOS_KEY_PASSPHRASE")
    password = config.key_passphrase.encode() if encrypted and config.key_passphrase else None
    try:
        key = serialization.load_pem_private_key(pem, password)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: cannot load the key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 key")
    return NoteSigner(origin, key)


def is_encrypted(config: Config, file: str) -> bool:
    return b"ENCRYPTED" in (config.keys_dir / file).read_bytes().split(b"\n", 1)[0]


def unencrypted_keys(config: Config) -> list[Path]:
    """The current signing keys stored without a passphrase."""
    return [
        config.keys_dir / str(entry["file"])
        for entry in _read_ring(config)
        if entry.get("retired_at") is None and not is_encrypted(config, str(entry["file"]))
    ]


def load_keyring(config: Config, origin: str) -> KeyRing:
    """Load every key of the ring, decrypting with the configured passphrase."""
    keys = []
    for entry in _read_ring(config):
        file = str(entry["file"])
        retired = entry.get("retired_at")
        if retired is None and not is_encrypted(config, file):
            log.warning(
                "the signing key %s is stored unencrypted; set CUSTOS_KEY_PASSPHRASE "
                "before `custos init` to encrypt it",
                config.keys_dir / file,
            )
        keys.append(
            ServiceKey(
                signer=load_signer(config, file, origin),
                retired_at=None if retired is None else int(str(retired)),
            )
        )
    return KeyRing(keys)


class KeyRingFile:
    """The ring as the files say now: reloaded when ``keyring.json`` changes on disk, so a
    ``custos key rotate`` reaches running servers without a restart."""

    def __init__(self, config: Config, origin: str) -> None:
        self.config = config
        self.origin = origin
        self._path = config.keys_dir / KEYRING_FILE
        self._stamp: tuple[int, int] | None = None
        self._ring: KeyRing | None = None

    def __call__(self) -> KeyRing:
        stat = self._path.stat()
        stamp = (stat.st_mtime_ns, stat.st_ino)
        if self._ring is None or stamp != self._stamp:
            self._ring = load_keyring(self.config, self.origin)
            self._stamp = stamp
        return self._ring

    def generate(self) -> NewKey:
        """A new key file, written but not yet in the ring."""
        file = new_key_file(self.config)
        verifier_key = load_signer(self.config, file, self.origin).verifier.verifier_key()
        return NewKey(handle=file, verifier_key=verifier_key)

    def install(self, key: NewKey, retire_current_at: int) -> None:
        ring = _read_ring(self.config)
        ring[-1]["retired_at"] = retire_current_at
        write_ring(self.config, [*ring, {"file": key.handle, "retired_at": None}])
