"""Settings: defaults < TOML file < CALLCENTERD_* environment, and errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callcenterd.services.system_settings import seed_from
from callcenterd.settings import ConfigError, Settings, env_names, load_settings

SAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "etc" / "callcenterd.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callcenterd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _config_error(config: Path | None, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ=environ)
    return str(caught.value)


# --- precedence ----------------------------------------------------------------------------
def test_defaults_without_file_or_environment() -> None:
    settings = load_settings(None, environ={})
    assert settings.http.host == "127.0.0.1"
    assert settings.http.port == 8001
    assert settings.state_dir == Path("state")
    assert settings.database is None
    assert settings.database_path == Path("state") / "callcenterd.sqlite3"
    assert settings.ari.url == "http://127.0.0.1:8088"
    assert settings.ari.username == "callcenterd"
    assert settings.ari.password.get_secret_value() == ""
    assert settings.ari.app == "callcenterd"
    assert (settings.ami.host, settings.ami.port) == ("127.0.0.1", 5038)
    assert settings.log.format == "auto"
    assert settings.auth.token_ttl_minutes == 1440
    assert settings.auth.bcrypt_rounds == 12
    assert settings.admin_password is None
    assert settings.timezone == "UTC"
    assert settings.tz.key == "UTC"


def test_the_shipped_sample_config_is_valid() -> None:
    settings = load_settings(SAMPLE_CONFIG, environ={})
    assert settings.state_dir == Path("/var/lib/callcenterd")
    assert settings.http.port == 8001


def test_toml_overrides_defaults(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        """
        state_dir = "/srv/cc"
        timezone = "Europe/Moscow"
        [http]
        port = 9001
        [ari]
        url = "https://pbx.example.com:8089/"
        username = "cc"
        [log]
        format = "json"
        """,
    )
    settings = load_settings(config, environ={})
    assert settings.http.port == 9001
    assert settings.http.host == "127.0.0.1"  # not in the file: still the default
    assert settings.state_dir == Path("/srv/cc")
    assert settings.database_path == Path("/srv/cc/callcenterd.sqlite3")
    assert settings.ari.url == "https://pbx.example.com:8089"  # trailing slash dropped
    assert settings.ari.username == "cc"
    assert settings.log.format == "json"
    assert settings.timezone == "Europe/Moscow"


def test_environment_overrides_toml(tmp_path: Path) -> None:
    config = _write(tmp_path, '[http]\nport = 9001\nhost = "0.0.0.0"\n[ari]\nusername = "file"\n')
    settings = load_settings(
        config, environ={"CALLCENTERD_HTTP_PORT": "9002", "CALLCENTERD_ARI_USERNAME": "env"}
    )
    assert settings.http.port == 9002
    assert settings.ari.username == "env"
    assert settings.http.host == "0.0.0.0"  # only in the file: the file's value


def test_unrelated_environment_is_ignored() -> None:
    settings = load_settings(None, environ={"HTTP_PORT": "1", "PORT": "2", "CALLCENTER_X": "3"})
    assert settings.http.port == 8001


# (environment variable, value, attribute path, expected typed value)
OPERATOR_ENV: list[tuple[str, str, str, Any]] = [
    ("CALLCENTERD_HTTP_HOST", "0.0.0.0", "http.host", "0.0.0.0"),
    ("CALLCENTERD_HTTP_PORT", "8080", "http.port", 8080),
    ("CALLCENTERD_DATABASE", "/data/cc.sqlite3", "database_path", Path("/data/cc.sqlite3")),
    ("CALLCENTERD_STATE_DIR", "/var/lib/cc", "state_dir", Path("/var/lib/cc")),
    ("CALLCENTERD_ARI_URL", "http://10.0.0.5:8088", "ari.url", "http://10.0.0.5:8088"),
    ("CALLCENTERD_ARI_USERNAME", "ariuser", "ari.username", "ariuser"),
    ("CALLCENTERD_ARI_PASSWORD", "ari-pw", "ari.password", "ari-pw"),
    ("CALLCENTERD_ARI_APP", "cc-app", "ari.app", "cc-app"),
    ("CALLCENTERD_AMI_HOST", "10.0.0.6", "ami.host", "10.0.0.6"),
    ("CALLCENTERD_AMI_PORT", "5039", "ami.port", 5039),
    ("CALLCENTERD_AMI_USERNAME", "amiuser", "ami.username", "amiuser"),
    ("CALLCENTERD_AMI_SECRET", "ami-pw", "ami.secret", "ami-pw"),
    ("CALLCENTERD_ADMIN_PASSWORD", "first-admin-pw", "admin_password", "first-admin-pw"),
    ("CALLCENTERD_LOG_FORMAT", "json", "log.format", "json"),
    ("CALLCENTERD_TIMEZONE", "Asia/Yekaterinburg", "timezone", "Asia/Yekaterinburg"),
    ("CALLCENTERD_HTTP_MAX_BODY_BYTES", "65536", "http.max_body_bytes", 65536),
    (
        "CALLCENTERD_HTTP_CORS_ORIGINS",
        "https://Board.example.com, http://10.0.0.9:8080",
        "http.cors_origins",
        ("https://board.example.com", "http://10.0.0.9:8080"),
    ),
]


def _get(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return value


@pytest.mark.parametrize(("env", "raw", "attribute", "expected"), OPERATOR_ENV)
def test_every_documented_environment_name_works(
    env: str, raw: str, attribute: str, expected: Any
) -> None:
    assert env in {name for name, _ in env_names()}
    default = _get(load_settings(None, environ={}), attribute)
    assert default != expected, "the test value must differ from the default"
    assert _get(load_settings(None, environ={env: raw}), attribute) == expected


def test_env_names_follow_the_field_paths() -> None:
    names = dict(env_names())
    assert names["CALLCENTERD_HTTP_PORT"] == ("http", "port")
    assert names["CALLCENTERD_RATE_LIMITS_AUTH_PER_MINUTE"] == ("rate_limits", "auth_per_minute")
    assert names["CALLCENTERD_AUTH_JWT_SECRET"] == ("auth", "jwt_secret")
    assert names["CALLCENTERD_TIMEZONE"] == ("timezone",)
    assert len(names) == len(set(names))


def test_empty_optional_environment_values_mean_unset() -> None:
    # `CALLCENTERD_DATABASE=` in an EnvironmentFile must not turn the database into ".".
    settings = load_settings(
        None,
        environ={
            "CALLCENTERD_STATE_DIR": "/var/lib/cc",
            "CALLCENTERD_DATABASE": "",
            "CALLCENTERD_ADMIN_PASSWORD": "",
        },
    )
    assert settings.database is None
    assert settings.database_path == Path("/var/lib/cc/callcenterd.sqlite3")
    assert settings.admin_password is None


@pytest.mark.parametrize(
    "environ",
    [
        {"CALLCENTERD_ARI_TIMEOUT": "120"},
        {"CALLCENTERD_ARI_TIMEOUT": "0.2"},
        {"CALLCENTERD_ARI_USERNAME": "u" * 100, "CALLCENTERD_ARI_PASSWORD": "p" * 256},
        {"CALLCENTERD_ARI_URL": "https://pbx.example.com"},
        {"CALLCENTERD_ARI_URL": "http://[::1]:8088"},
    ],
)
def test_every_valid_ari_setting_seeds_the_stored_settings(environ: dict[str, str]) -> None:
    # The file/environment seeds the stored asterisk_config on every start: a value the
    # settings accept must not crash the daemon there with a pydantic traceback.
    settings = load_settings(None, environ=environ)
    asterisk = seed_from(settings).asterisk_config
    assert 1 <= asterisk.timeout <= 120
    assert asterisk.username == settings.ari.username
    assert asterisk.password == settings.ari.password.get_secret_value()


def test_seeding_splits_the_ari_url() -> None:
    settings = load_settings(None, environ={"CALLCENTERD_ARI_URL": "https://pbx.example.com:8089"})
    asterisk = seed_from(settings).asterisk_config
    assert (asterisk.host, asterisk.port, asterisk.protocol) == ("pbx.example.com", 8089, "https")
    assert asterisk.base_url == "https://pbx.example.com:8089"
    plain = seed_from(load_settings(None, environ={})).asterisk_config
    assert (plain.host, plain.port, plain.protocol) == ("127.0.0.1", 8088, "ARI")


# --- systemd's STATE_DIRECTORY -------------------------------------------------------------
def test_systemd_state_directory_is_used_when_no_state_dir_is_given() -> None:
    settings = load_settings(None, environ={"STATE_DIRECTORY": "/var/lib/callcenterd"})
    assert settings.state_dir == Path("/var/lib/callcenterd")
    assert settings.database_path == Path("/var/lib/callcenterd/callcenterd.sqlite3")


def test_systemd_state_directory_takes_the_first_of_several() -> None:
    settings = load_settings(None, environ={"STATE_DIRECTORY": "/var/lib/a:/var/lib/b"})
    assert settings.state_dir == Path("/var/lib/a")


def test_explicit_state_dir_beats_systemd_state_directory(tmp_path: Path) -> None:
    config = _write(tmp_path, 'state_dir = "/srv/from-file"\n')
    environ = {"STATE_DIRECTORY": "/var/lib/systemd"}
    assert load_settings(config, environ=environ).state_dir == Path("/srv/from-file")
    environ["CALLCENTERD_STATE_DIR"] = "/srv/from-env"
    assert load_settings(None, environ=environ).state_dir == Path("/srv/from-env")


# --- errors name the key -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("environ", "key", "env"),
    [
        ({"CALLCENTERD_HTTP_PORT": "eighty"}, "http.port", "CALLCENTERD_HTTP_PORT"),
        ({"CALLCENTERD_HTTP_PORT": "0"}, "http.port", "CALLCENTERD_HTTP_PORT"),
        ({"CALLCENTERD_AMI_PORT": "70000"}, "ami.port", "CALLCENTERD_AMI_PORT"),
        ({"CALLCENTERD_TIMEZONE": "Mars/Olympus"}, "timezone", "CALLCENTERD_TIMEZONE"),
        ({"CALLCENTERD_ARI_URL": "localhost:8088"}, "ari.url", "CALLCENTERD_ARI_URL"),
        ({"CALLCENTERD_ARI_URL": "ftp://pbx:8088"}, "ari.url", "CALLCENTERD_ARI_URL"),
        ({"CALLCENTERD_ARI_APP": "bad app/name"}, "ari.app", "CALLCENTERD_ARI_APP"),
        ({"CALLCENTERD_LOG_FORMAT": "xml"}, "log.format", "CALLCENTERD_LOG_FORMAT"),
        ({"CALLCENTERD_ADMIN_PASSWORD": "short"}, "admin_password", "CALLCENTERD_ADMIN_PASSWORD"),
        ({"CALLCENTERD_ARI_TIMEOUT": "300"}, "ari.timeout", "CALLCENTERD_ARI_TIMEOUT"),
        ({"CALLCENTERD_ARI_USERNAME": "u" * 101}, "ari.username", "CALLCENTERD_ARI_USERNAME"),
        (
            {"CALLCENTERD_HTTP_CORS_ORIGINS": "*"},
            "http.cors_origins",
            "CALLCENTERD_HTTP_CORS_ORIGINS",
        ),
        (
            {"CALLCENTERD_HTTP_CORS_ORIGINS": "https://a.example/path"},
            "http.cors_origins",
            "CALLCENTERD_HTTP_CORS_ORIGINS",
        ),
        (
            {"CALLCENTERD_HTTP_MAX_BODY_BYTES": "10"},
            "http.max_body_bytes",
            "CALLCENTERD_HTTP_MAX_BODY_BYTES",
        ),
    ],
)
def test_bad_environment_values_name_the_key(environ: dict[str, str], key: str, env: str) -> None:
    message = _config_error(None, environ)
    assert f"{key} (env {env})" in message
    assert message.count("\n") == 1, "exactly one problem reported"


def test_bad_port_in_toml_names_the_key(tmp_path: Path) -> None:
    message = _config_error(_write(tmp_path, "[http]\nport = 0\n"), {})
    assert "http.port" in message
    assert "greater than or equal to 1" in message
    assert str(tmp_path / "callcenterd.toml") in message


def test_bad_timezone_in_toml_names_the_key(tmp_path: Path) -> None:
    message = _config_error(_write(tmp_path, 'timezone = "Europe/Atlantis"\n'), {})
    assert "timezone" in message
    assert "Europe/Atlantis" in message


def test_bad_url_in_toml_names_the_key(tmp_path: Path) -> None:
    message = _config_error(_write(tmp_path, '[ari]\nurl = "not a url"\n'), {})
    assert "ari.url" in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour = 'blue'\n", "colour"),
        ("[http]\nprot = 8001\n", "http.prot"),
        ("[asterisk]\nhost = 'pbx'\n", "asterisk"),
    ],
)
def test_unknown_toml_key_is_refused_and_named(tmp_path: Path, text: str, key: str) -> None:
    message = _config_error(_write(tmp_path, text), {})
    assert f"{key} (env " in message
    assert "unknown key" in message


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "[http\nport = 1\n")
    message = _config_error(path, {})
    assert "not valid TOML" in message
    assert str(path) in message


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    message = _config_error(missing, {})
    assert str(missing) in message
    assert "does not exist" in message


def test_environment_cannot_fill_a_section_the_file_made_a_value(tmp_path: Path) -> None:
    message = _config_error(_write(tmp_path, 'ari = "x"\n'), {"CALLCENTERD_ARI_URL": "http://a:1"})
    assert "ari" in message
    assert "CALLCENTERD_ARI_URL" in message


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    message = _config_error(
        _write(tmp_path, "[http]\nport = 0\n"), {"CALLCENTERD_TIMEZONE": "Nowhere/Land"}
    )
    assert "http.port" in message
    assert "timezone" in message


# --- secrets -------------------------------------------------------------------------------
def test_secrets_never_appear_in_repr_or_str() -> None:
    secrets = {
        "CALLCENTERD_ARI_PASSWORD": "ari-pass-123",
        "CALLCENTERD_AMI_SECRET": "ami-secret-456",
        "CALLCENTERD_ADMIN_PASSWORD": "admin-pass-789",
        "CALLCENTERD_AUTH_JWT_SECRET": "jwt-secret-abc",
        "CALLCENTERD_AUTH_SECRET_KEY": "fernet-key-def",
    }
    settings = load_settings(None, environ=secrets)
    shown = [repr(settings), str(settings), settings.model_dump_json(), repr(settings.ari)]
    for value in secrets.values():
        for text in shown:
            assert value not in text
    # ...while the daemon can still read them.
    assert settings.ari.password.get_secret_value() == "ari-pass-123"
    assert settings.ami.secret.get_secret_value() == "ami-secret-456"


def test_a_database_url_the_store_cannot_use_stops_the_start() -> None:
    message = _config_error(None, {"CALLCENTERD_DATABASE": "postgresql://ccd:s3cret@db/ccd"})
    assert "database" in message and "postgresql://" in message
    assert "s3cret" not in message  # the URL's password is never repeated


def test_a_sqlite_url_is_the_file_it_names(tmp_path: Path) -> None:
    target = tmp_path / "calls.sqlite3"
    settings = load_settings(None, {"CALLCENTERD_DATABASE": f"sqlite://{target}"})
    assert settings.database_path == target
