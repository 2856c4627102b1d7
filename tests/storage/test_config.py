"""Configuration: custos.toml in the home, overridden by CUSTOS_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.config import ConfigError, load_config


def test_the_embedded_default_needs_nothing(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert config.database_url == f"sqlite:///{tmp_path / 'custos.db'}"
    assert config.store == f"file://{tmp_path / 'objects'}"
    assert config.digests == ("sha256",)
    assert config.checkpoint_interval == 1.0


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    (tmp_path / "custos.toml").write_text('origin = "a.example/log"\ncheckpoint_interval = 5\n')
    config = load_config(
        tmp_path,
        environ={
            "CUSTOS_CHECKPOINT_INTERVAL": "0.5",
            "CUSTOS_DIGESTS": "sha256, SHA-1,md5",
            "CUSTOS_MAX_UPLOAD_BYTES": "1024",
            "CUSTOS_KEY_PASSPHRASE": "secret",
        },
    )
    assert config.origin == "a.example/log"
    assert config.checkpoint_interval == 0.5
    assert config.digests == ("sha256", "sha1", "md5")
    assert config.max_upload_bytes == 1024
    assert "secret" not in repr(config)


def test_home_comes_from_custos_home(tmp_path: Path) -> None:
    assert load_config(environ={"CUSTOS_HOME": str(tmp_path)}).home == tmp_path


@pytest.mark.parametrize(
    ("content", "env", "words"),
    [
        ("origin = ", {}, "custos.toml"),
        ("colour = 'blue'\n", {}, "unknown settings colour"),
        ("", {"CUSTOS_DIGESTS": "md5"}, "must include sha256"),
        ("", {"CUSTOS_DIGESTS": "sha256,crc32"}, "must include sha256"),
        ("", {"CUSTOS_MAX_UPLOAD_BYTES": "lots"}, "max_upload_bytes"),
        ("checkpoint_interval = -1\n", {}, "positive"),
        ("origin = 3\n", {}, "origin"),
    ],
)
def test_bad_configuration_is_a_clear_error(
    tmp_path: Path, content: str, env: dict[str, str], words: str
) -> None:
    (tmp_path / "custos.toml").write_text(content)
    with pytest.raises(ConfigError, match=words):
        load_config(tmp_path, environ=env)


def test_storage_and_upload_settings_come_from_the_environment(tmp_path: Path) -> None:
    config = load_config(
        tmp_path,
        environ={
            "CUSTOS_STORE": "s3://evidence/custos/",
            "CUSTOS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "CUSTOS_S3_REGION": "eu-central-1",
            "CUSTOS_RETENTION_MODE": "COMPLIANCE",
            "CUSTOS_RETENTION_DAYS": "3650",
            "CUSTOS_MULTIPART_PART_SIZE": str(8 * 1024 * 1024),
            "CUSTOS_STAGING_MAX_AGE": "3600",
            "CUSTOS_UPLOAD_SESSION_TTL": "7200",
        },
    )
    assert config.store == "s3://evidence/custos/"
    assert (config.s3_endpoint_url, config.s3_region) == ("http://127.0.0.1:9000", "eu-central-1")
    assert (config.retention_mode, config.retention_days) == ("COMPLIANCE", 3650)
    assert config.multipart_part_size == 8 * 1024 * 1024
    assert (config.staging_max_age, config.upload_session_ttl) == (3600.0, 7200.0)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"CUSTOS_RETENTION_MODE": "FOREVER"}, "retention_mode"),
        ({"CUSTOS_RETENTION_DAYS": "-1"}, "retention_days"),
        ({"CUSTOS_MULTIPART_PART_SIZE": "1024"}, "multipart_part_size"),
        ({"CUSTOS_UPLOAD_SESSION_TTL": "0"}, "upload_session_ttl"),
    ],
)
def test_bad_storage_settings_are_clear_errors(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        load_config(tmp_path, environ=env)


def test_init_writes_back_the_settings_it_was_given(tmp_path: Path) -> None:
    from storage.config import Config, render_config

    config = Config(home=tmp_path, origin="a.example/log", retention_days=7)
    (tmp_path / "custos.toml").write_text(render_config(config))
    assert load_config(tmp_path, environ={}) == config


def test_worker_threads_come_from_the_environment_within_limits(tmp_path: Path) -> None:
    assert load_config(tmp_path, environ={}).worker_threads == 8
    environ = {"CUSTOS_WORKER_THREADS": "3"}
    assert load_config(tmp_path, environ=environ).worker_threads == 3
    for bad in ("0", "65", "many"):
        with pytest.raises(ConfigError, match="worker_threads"):
            load_config(tmp_path, environ={"CUSTOS_WORKER_THREADS": bad})
