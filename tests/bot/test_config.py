"""Settings: defaults, validation with one line naming the variable, secrets kept out of logs."""

from __future__ import annotations

import pytest

from bot.config import DEFAULT_DATABASE_URL, Settings, SettingsError


def test_defaults_need_nothing():
    s = Settings.from_env({})
    assert s.database_url == DEFAULT_DATABASE_URL and s.bot_timezone == "America/New_York"
    assert s.reminder_interval_seconds == 60 and s.port == 3000 and not s.socket_mode


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_APP_TOKEN": "xoxb-wrong"}, "SLACK_APP_TOKEN"),
        ({"SLACK_API_URL": "ftp://x"}, "SLACK_API_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql+psycopg2://u@h/db"}, "DATABASE_URL"),  # a driver that is not installed
        ({"DATABASE_URL": "postgresql+asyncpg://u@h/db"}, "DATABASE_URL"),
        ({"REVIEW_CHANNEL": "#general"}, "REVIEW_CHANNEL"),
        ({"MANAGER_CHANNEL": "general"}, "MANAGER_CHANNEL"),
        ({"ADMIN_USER_IDS": "U123ABC,bob"}, "ADMIN_USER_IDS"),
        ({"BOT_TIMEZONE": "Mars/Olympus"}, "BOT_TIMEZONE"),
        ({"REMINDER_INTERVAL_SECONDS": "often"}, "REMINDER_INTERVAL_SECONDS"),
        ({"REMINDER_INTERVAL_SECONDS": "0"}, "REMINDER_INTERVAL_SECONDS"),
        ({"PORT": "70000"}, "PORT"),
    ],
)
def test_bad_setting_names_the_variable(env, variable):
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert variable in str(err.value) and "\n" not in str(err.value)


def test_serve_requires_token_and_secret():
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN"):
        Settings.from_env({}).require_for_serve()
    with pytest.raises(SettingsError, match="SLACK_SIGNING_SECRET"):
        Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1"}).require_for_serve()
    Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}).require_for_serve()


def test_secrets_never_in_repr():
    s = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": "xoxb-supersecret",
            "SLACK_SIGNING_SECRET": "shh-secret",
            "SLACK_APP_TOKEN": "xapp-secret",
            "DATABASE_URL": "postgresql+psycopg://u:pw123@h/db",
        }
    )
    text = repr(s) + str(s)
    for secret in ("supersecret", "shh-secret", "xapp-secret", "pw123"):
        assert secret not in text


def test_cli_reports_bad_setting_in_one_line(monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("BOT_TIMEZONE", "Nowhere/Land")
    assert main(["audit", "verify"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "BOT_TIMEZONE" in err


def test_every_setting_is_in_env_example_and_the_readme():
    """`.env.example` and the README's settings table list the same variables (SPEC "Configuration")."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    example = set(re.findall(r"^#? ?([A-Z][A-Z_]+)=", (root / ".env.example").read_text(), re.M))
    readme = (root / "README.md").read_text()
    table = readme[readme.index("### Settings") : readme.index("### Command line")]
    documented = set(re.findall(r"^\| `([A-Z][A-Z_]+)` \|", table, re.M))
    read = {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "DATABASE_URL"}
    read |= {
        "REVIEW_CHANNEL",
        "MANAGER_CHANNEL",
        "ADMIN_USER_IDS",
        "BOT_TIMEZONE",
        "REMINDER_INTERVAL_SECONDS",
    }
    read |= {"PORT", "AUDIT_KEY_FILE", "AUDIT_CHANNEL", "CUI_BANNER"}
    assert example == documented == read
