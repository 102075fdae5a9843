"""Build channels and the renderer from the ``[notifiers]`` section of config.toml.

Example (every key shown; only the sections present are built, and ``console`` always is)::

    [notifiers]
    timezone = "Asia/Shanghai"        # how notices show times
    templates = "zone-templates"      # optional override folder: <templates>/<locale>/<kind>.j2

    [notifiers.console]
    style = "text"                    # text | json

    [notifiers.file]
    path = "var/notices.jsonl"        # one JSON line per message
    fsync = false

    [notifiers.email]
    host = "smtp.example.gov.cn"
    port = 587                        # default: 587 starttls, 465 ssl, 25 none
    security = "starttls"             # starttls | ssl | none
    sender = "开发区网格办 <grid@example.gov.cn>"
    user_env = "CLOSELOOP_SMTP_USER"
    password_env = "CLOSELOOP_SMTP_PASSWORD"
    timeout = 10                      # seconds
    ca_file = "/etc/closeloop/ca.pem" # optional

    [notifiers.webhook]
    format = "json"                   # json | dingtalk | wecom | feishu, for plain addresses
    secret_env = "CLOSELOOP_WEBHOOK_SECRET"   # optional default signing secret
    timeout = 5
    trust_env = true                  # use HTTP(S)_PROXY from the environment

Relative paths are resolved against ``base_dir`` (the folder of config.toml) when given.
Unknown keys are errors, so a typo does not silently fall back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from notifiers.console import ConsoleChannel
from notifiers.email import EmailChannel
from notifiers.file import FileChannel
from notifiers.message import Channel, Clock, utc_now
from notifiers.render import Renderer
from notifiers.webhook import WebhookChannel

_TOP_KEYS = {"timezone", "templates", "console", "file", "email", "webhook"}
_KEYS: dict[str, tuple[set[str], set[str]]] = {  # section: (required, optional)
    "console": (set(), {"style"}),
    "file": ({"path"}, {"fsync"}),
    "email": (
        {"host", "sender"},
        {"port", "security", "user_env", "password_env", "timeout", "ca_file"},
    ),
    "webhook": (set(), {"format", "secret_env", "timeout", "trust_env"}),
}


def _section(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = config.get(name, {})
    if not isinstance(section, Mapping):
        raise ValueError(f"[notifiers.{name}] must be a table")
    required, optional = _KEYS[name]
    unknown = set(section) - required - optional
    if unknown:
        raise ValueError(
            f"[notifiers.{name}] unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(required | optional))}"
        )
    missing = required - set(section)
    if missing:
        raise ValueError(f"[notifiers.{name}] needs {', '.join(sorted(missing))}")
    return section


def _typed(section: Mapping[str, Any], name: str, key: str, kind: type | tuple[type, ...]) -> Any:
    value = section[key]
    # bool is an int in Python; a timeout of `true` is still a mistake.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"[notifiers.{name}] {key} = {value!r} has the wrong type")
    return value


def _path(value: str, base_dir: Path | None) -> Path:
    path = Path(value)
    return base_dir / path if base_dir is not None and not path.is_absolute() else path


def _check_top(config: Mapping[str, Any]) -> None:
    unknown = set(config) - _TOP_KEYS
    if unknown:
        raise ValueError(
            f"[notifiers] unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_TOP_KEYS))}"
        )


def build_channels(
    config: Mapping[str, Any], base_dir: Path | None = None, clock: Clock = utc_now
) -> dict[str, Channel]:
    """Channels by name from the ``[notifiers]`` table, each reading the time from ``clock``;
    ValueError on a bad configuration."""
    _check_top(config)
    channels: dict[str, Channel] = {}

    console = _section(config, "console")
    channels["console"] = ConsoleChannel(
        style=_typed(console, "console", "style", str) if "style" in console else "text",
        clock=clock,
    )

    if "file" in config:
        section = _section(config, "file")
        channels["file"] = FileChannel(
            path=_path(_typed(section, "file", "path", str), base_dir),
            fsync=_typed(section, "file", "fsync", bool) if "fsync" in section else False,
            clock=clock,
        )

    if "email" in config:
        section = _section(config, "email")
        options: dict[str, Any] = {
            "host": _typed(section, "email", "host", str),
            "sender": _typed(section, "email", "sender", str),
        }
        for key, kind in (
            ("port", int),
            ("security", str),
            ("user_env", str),
            ("password_env", str),
            ("timeout", (int, float)),
        ):
            if key in section:
                options[key] = _typed(section, "email", key, kind)
        if "ca_file" in section:
            options["ca_file"] = str(_path(_typed(section, "email", "ca_file", str), base_dir))
        channels["email"] = EmailChannel(**options, clock=clock)

    if "webhook" in config:
        section = _section(config, "webhook")
        hook: dict[str, Any] = {}
        hook_keys: tuple[tuple[str, type | tuple[type, ...]], ...] = (
            ("format", str),
            ("secret_env", str),
            ("timeout", (int, float)),
            ("trust_env", bool),
        )
        for key, want in hook_keys:
            if key in section:
                hook[key] = _typed(section, "webhook", key, want)
        channels["webhook"] = WebhookChannel(**hook, clock=clock)

    return channels


def build_renderer(config: Mapping[str, Any], base_dir: Path | None = None) -> Renderer:
    """The renderer from ``[notifiers] timezone`` and ``templates`` (the override folder)."""
    _check_top(config)
    timezone = config.get("timezone", "Asia/Shanghai")
    if not isinstance(timezone, str):
        raise ValueError(f"[notifiers] timezone = {timezone!r} must be a string")
    templates = config.get("templates")
    if templates is not None and not isinstance(templates, str):
        raise ValueError(f"[notifiers] templates = {templates!r} must be a path string")
    override = _path(templates, base_dir) if templates else None
    return Renderer(timezone=timezone, override_dir=override)
