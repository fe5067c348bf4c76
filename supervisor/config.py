"""Build the effective :class:`~vango_mp.settings.Settings`.

Precedence, highest first: command-line flag > ``VANGO_*`` environment
variable > TOML file (``--config FILE``) > the dataclass default.

Every key is a field of ``Settings``; the TOML file and the environment use
the field name (``graceful_timeout`` / ``VANGO_GRACEFUL_TIMEOUT``). Values are
parsed by the field's type:

- durations (float fields in seconds): ``30``, ``1.5``, ``"250ms"``,
  ``"30s"``, ``"5m"``, ``"1h"``;
- sizes (byte counts): ``65536``, ``"64KiB"``, ``"512MiB"``, ``"1GB"``;
- booleans: TOML ``true``/``false``; in the environment ``1/0``,
  ``true/false``, ``yes/no``, ``on/off``;
- lists: TOML arrays; in the environment a comma-separated string;
- optional strings: an empty string means "unset".

An unknown key (in the file or as a ``VANGO_*`` variable) and an invalid value
raise :class:`ConfigError`, whose message is one line naming the key and where
it came from; the CLI prints it and exits 2 before anything is forked.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from vango_mp.security import networks, valid_host_pattern
from vango_mp.settings import Settings

ENV_PREFIX = "VANGO_"
ENV_CONFIG = "VANGO_CONFIG"  # path of the TOML file when --config is not given
DEFAULT = "default"

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "k": 1024, "m": 1024**2, "g": 1024**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# Size fields by name: every int whose name ends like this is a byte count.
_SIZE_SUFFIXES = ("_size", "_bytes", "_rss", "_budget", "_frame", "_backlog")
_SIZE_NAMES = frozenset({"max_memory_per_session"})
# Float fields that are not durations.
_PLAIN_FLOAT_SUFFIXES = ("_ratio", "_rate")
EVICTION_POLICIES = ("lru", "oldest", "random")
SECRET_FIELDS = ("persistence_secret", "persistence_secret_previous")  # hex; never printed
HIDDEN_FIELDS = (*SECRET_FIELDS, "ops_token", "status_token", "store_url")  # never printed (store_url may hold a password)
MIN_SECRET_BYTES = 32  # HMAC-SHA256 keys shorter than its output weaken it


class ConfigError(Exception):
    """An invalid or unknown configuration key; ``str()`` is one line."""

    def __init__(self, key: str, source: str, problem: str) -> None:
        self.key, self.source, self.problem = key, source, problem
        super().__init__(f"config error: {key} ({source}): {problem}")


FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Settings)}


def kind_of(name: str) -> str:
    """The value kind of a Settings field: duration, size, int, float, bool, list, optstr, str."""
    ftype = str(FIELDS[name].type).replace(" ", "")
    if ftype == "bool":
        return "bool"
    if ftype.startswith("list["):
        return "list"
    if ftype in ("str|None", "None|str"):
        return "optstr"
    if ftype == "float":
        return "float" if name.endswith(_PLAIN_FLOAT_SUFFIXES) else "duration"
    if ftype == "int":
        return "size" if name in _SIZE_NAMES or name.endswith(_SIZE_SUFFIXES) else "int"
    return "str"


def parse_duration(text: str) -> float:
    """``"250ms"`` -> 0.25, ``"5m"`` -> 300.0; a bare number is seconds."""
    m = _NUMBER_UNIT.match(text)
    if not m or m.group(2).lower() not in _DURATION_UNITS | {"": 1.0}:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 250ms, 5m)")
    return float(m.group(1)) * _DURATION_UNITS.get(m.group(2).lower(), 1.0)


def parse_size(text: str) -> int:
    """``"512MiB"`` -> 536870912, ``"1GB"`` -> 10**9; a bare number is bytes."""
    m = _NUMBER_UNIT.match(text)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 65536, 64KiB, 512MiB)")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def coerce(name: str, raw: Any, *, from_text: bool) -> Any:
    """Convert ``raw`` (TOML value, or env/flag text when ``from_text``) to the field's type."""
    kind = kind_of(name)
    if kind == "bool":
        return _coerce_bool(raw, from_text)
    if kind == "list":
        return _coerce_list(raw, from_text)
    if kind == "optstr":
        if raw is None or (isinstance(raw, str) and raw == ""):
            return None
        return _require(raw, str, "a string")
    if kind == "str":
        return _require(raw, str, "a string")
    if kind in ("duration", "size"):
        if isinstance(raw, str):
            return parse_duration(raw) if kind == "duration" else parse_size(raw)
        value = _require(raw, (int, float), "a number")
        return float(value) if kind == "duration" else int(value)
    return _coerce_number(kind, raw)


def _require(raw: Any, types: Any, what: str) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, types):
        raise ValueError(f"expected {what}, got {raw!r}")
    return raw


def _coerce_bool(raw: Any, from_text: bool) -> bool:
    if isinstance(raw, bool):
        return raw
    if from_text and isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ValueError(f"expected a boolean, got {raw!r}")


def _coerce_list(raw: Any, from_text: bool) -> list[str]:
    if from_text and isinstance(raw, str):
        return [item.strip() for item in raw.split(",") if item.strip()]
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return list(raw)
    raise ValueError(f"expected a list of strings, got {raw!r}")


def _coerce_number(kind: str, raw: Any) -> int | float:
    if isinstance(raw, str):
        try:
            return int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise ValueError(f"expected {'an integer' if kind == 'int' else 'a number'}, got {raw!r}") from None
    if kind == "int":
        return _require(raw, int, "an integer")
    return float(_require(raw, (int, float), "a number"))


def read_toml(path: str) -> dict[str, Any]:
    """Parse the TOML file; a missing or malformed file is a ConfigError on ``--config``."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("config", path, exc.strerror or str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", path, f"invalid TOML: {exc}") from None


def layer_from_toml(data: Mapping[str, Any], path: str) -> dict[str, tuple[Any, str]]:
    """Flat top-level keys only; a table or unknown key is an error naming it."""
    layer: dict[str, tuple[Any, str]] = {}
    for key, raw in data.items():
        source = f"file {path}"
        if key not in FIELDS:
            raise ConfigError(key, source, "unknown key")
        layer[key] = (_convert(key, raw, source, from_text=False), source)
    return layer


def layer_from_env(env: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """``VANGO_<FIELD>`` variables; an unknown ``VANGO_*`` name is an error (typos fail loudly)."""
    layer: dict[str, tuple[Any, str]] = {}
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or var == ENV_CONFIG:
            continue
        key = var[len(ENV_PREFIX):].lower()
        source = f"env {var}"
        if key not in FIELDS:
            raise ConfigError(var, source, "unknown VANGO_* variable")
        layer[key] = (_convert(key, raw, source, from_text=True), source)
    return layer


def layer_from_flags(flags: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
    """Flags already parsed by argparse, keyed by field name; ``None`` means not given."""
    layer: dict[str, tuple[Any, str]] = {}
    for key, raw in flags.items():
        if raw is None:
            continue
        source = f"flag --{key.replace('_', '-')}"
        layer[key] = (_convert(key, raw, source, from_text=isinstance(raw, str)), source)
    return layer


def _convert(key: str, raw: Any, source: str, *, from_text: bool) -> Any:
    try:
        return coerce(key, raw, from_text=from_text)
    except ValueError as exc:
        raise ConfigError(key, source, str(exc)) from None


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> tuple[Settings, dict[str, str]]:
    """Merge the layers and validate; returns the settings and each key's source."""
    env = os.environ if env is None else env
    config_file = config_file or env.get(ENV_CONFIG) or None
    layers = [layer_from_toml(read_toml(config_file), config_file)] if config_file else []
    layers += [layer_from_env(env), layer_from_flags(flags or {})]
    values: dict[str, Any] = {}
    sources = {name: DEFAULT for name in FIELDS}
    for layer in layers:
        for key, (value, source) in layer.items():
            values[key], sources[key] = value, source
    settings = Settings(**values)
    validate(settings, sources)
    return settings, sources


def validate(settings: Settings, sources: Mapping[str, str]) -> None:
    """Range and format checks; the first failure raises ConfigError."""
    for key, problem in _problems(settings):
        raise ConfigError(key, sources.get(key, DEFAULT), problem)


def _problems(s: Settings) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    try:
        parse_bind(s.bind)
    except ValueError as exc:
        problems.append(("bind", str(exc)))
    if not re.fullmatch(r"[\w.]+:[\w.]+", s.app):
        problems.append(("app", f"expected module:attr, got {s.app!r}"))
    if s.eviction_policy not in EVICTION_POLICIES:
        problems.append(("eviction_policy", f"expected one of {', '.join(EVICTION_POLICIES)}"))
    for name in ("memory_soft_ratio", "memory_hard_ratio", "memory_critical_ratio"):
        if not 0.0 < getattr(s, name) <= 1.0:
            problems.append((name, "must be in (0, 1]"))
    for name in SECRET_FIELDS:
        try:
            secret = bytes.fromhex(getattr(s, name, "") or "")
        except ValueError:
            problems.append((name, "expected a hex string"))
            continue
        if secret and len(secret) < MIN_SECRET_BYTES:
            problems.append((name, f"must be at least {MIN_SECRET_BYTES} bytes ({2 * MIN_SECRET_BYTES} hex digits), "
                                   f"got {len(secret)}"))
    if s.store_url and not s.store_url.startswith(("redis://", "rediss://", "unix://")):
        problems.append(("store_url", f"expected redis://HOST:PORT/DB, rediss://... or unix://..., got {s.store_url!r}"))
    elif s.store_url and not s.persistence_secret:
        problems.append(("store_url", "needs persistence_secret: every machine must seal sessions with the same one"))
    if s.memory_soft_ratio > s.memory_hard_ratio:
        problems.append(("memory_soft_ratio", "must not exceed memory_hard_ratio"))
    if s.memory_hard_ratio > s.memory_critical_ratio:
        problems.append(("memory_hard_ratio", "must not exceed memory_critical_ratio"))
    problems += _range_problems(s)
    problems += _http_problems(s)
    return problems


def _http_problems(s: Settings) -> list[tuple[str, str]]:
    """Hosts, networks and the ops token: checked here so a typo fails at start, not per request."""
    problems = []
    for name in ("allowed_hosts", "allowed_redirect_hosts"):
        bad = [h for h in getattr(s, name) if not valid_host_pattern(h)]
        if bad:
            problems.append((name, f"not a host[:port] or *.domain: {bad[0]!r}"))
    if s.canonical_host and (not valid_host_pattern(s.canonical_host) or s.canonical_host.startswith("*")):
        problems.append(("canonical_host", f"not a host[:port]: {s.canonical_host!r}"))
    for name in ("trusted_proxies", "ops_networks"):
        for spec in getattr(s, name):
            try:
                networks((spec,))
            except ValueError:
                problems.append((name, f"not an IP address or CIDR: {spec!r}"))
                break
    if s.ops_token and len(s.ops_token) < 16:
        problems.append(("ops_token", "must be at least 16 characters"))
    if s.status_token and len(s.status_token) < 16:
        problems.append(("status_token", "must be at least 16 characters"))
    if s.log_format not in ("text", "json"):
        problems.append(("log_format", "must be text or json"))
    return problems


def _range_problems(s: Settings) -> list[tuple[str, str]]:
    problems = []
    positive = ("graceful_timeout", "heartbeat_timeout", "worker_heartbeat", "bus_timeout",
                "respawn_backoff_min", "respawn_backoff_max", "crash_period", "abort_timeout",
                "worker_boot_timeout", "bus_max_frame", "bus_max_backlog", "crash_intensity",
                "write_timeout", "max_pending_output_bytes")
    for name in FIELDS:
        value = getattr(s, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            problems.append((name, f"must not be negative, got {value}"))
        elif name in positive and value <= 0:
            problems.append((name, f"must be positive, got {value}"))
    if s.worker_heartbeat >= s.heartbeat_timeout:
        problems.append(("worker_heartbeat", "must be shorter than heartbeat_timeout"))
    return problems


RESTART_KEYS = ("bind", "app", "workers", "runtime_dir", "store_url")  # a HUP cannot change these


def keep_restart_keys(current: Settings, new: Settings) -> list[str]:
    """HUP: keep ``current``'s value of each key only a restart can change, in ``new``; the keys that differed."""
    changed = [key for key in RESTART_KEYS if getattr(new, key) != getattr(current, key)]
    for key in changed:
        setattr(new, key, getattr(current, key))
    return changed


def parse_bind(bind: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` / ``"[::1]:0"`` / ``":8080"`` -> (host, port)."""
    host, sep, port_text = bind.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"expected HOST:PORT, got {bind!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or "0.0.0.0", int(port_text)


def resolve_workers(settings: Settings) -> int:
    """``workers = 0`` means one per CPU this process may run on."""
    return settings.worker_count()


def render_toml(settings: Settings, sources: Mapping[str, str]) -> str:
    """The effective config as TOML, each line commented with its source."""
    lines = []
    for name in FIELDS:
        value = getattr(settings, name)
        comment = sources.get(name, DEFAULT)
        if name == "workers" and value == 0:
            comment += f"; 0 = one per CPU ({resolve_workers(settings)})"
        if value is None:
            lines.append(f"# {name} = (unset)  # {comment}")
        elif name in HIDDEN_FIELDS and value:
            lines.append(f"# {name} = (set, not shown)  # {comment}")
        else:
            lines.append(f"{name} = {_toml_value(value)}  # {comment}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)
