"""``vango-mp``: parse flags, build the config, preload the app, run the arbiter.

Exit statuses (see :mod:`supervisor.errors`): 0 after TERM/INT/QUIT, 1 when a
slot crashed too often, 2 for an invalid config or an app that cannot be
loaded (one line on stderr naming the key; nothing is forked), 3 when the
listener or the bus cannot be created.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from vango_mp.settings import Settings

from .config import ConfigError, load_settings, render_toml
from .errors import EXIT_CONFIG, EXIT_OK

LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"

# Flags that map one-to-one onto Settings fields (dest = field name).
FIELD_FLAGS = {
    "--workers": "number of worker processes (default: one per CPU)",
    "--bind": "HOST:PORT to listen on (default 127.0.0.1:8080; port 0 picks one)",
    "--app": "the app to serve, module:attr (default: the built-in demo)",
    "--graceful-timeout": "seconds (or 30s, 1m) a stopping worker may drain (default 30s)",
    "--log-file": "append logs to this file instead of stderr (reopened on SIGUSR1)",
    "--runtime-dir": "where the private bus directory is created (default: $RUNTIME_DIRECTORY or /tmp)",
    "--state-dir": "where persistent state (session store) lives",
    "--memory-budget": "bytes (or 512MiB, 2GiB) all workers may use (default: cgroup limit or physical memory)",
    "--memory-interval": "seconds (or 100ms, 10s) between a worker's RSS checks (default 10s)",
    "--max-detached": "detached sessions a worker keeps before evicting the least recently used (default 10000)",
    "--resume-window": "seconds (or 5m) a detached session stays resumable (default 5m)",
    "--max-worker-rss": "bytes above which a worker is recycled (default: its share of the hard limit)",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line on stderr and exit 2, like a config error."""
        self.exit(EXIT_CONFIG, f"vango-mp: {message} (see vango-mp --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vango-mp", description="Serve a vango-mp app with one worker per CPU.")
    for flag, help_text in FIELD_FLAGS.items():
        parser.add_argument(flag, dest=flag[2:].replace("-", "_"), metavar="VALUE", help=help_text)
    parser.add_argument("--config", metavar="FILE", help="TOML config file (or $VANGO_CONFIG)")
    parser.add_argument("--dev", action="store_const", const=True,
                        help="development mode: no origin check, no CSRF, no secure cookies")
    parser.add_argument("--debug", action="store_const", const=True,
                        help="signal writes during render raise; unserializable state fails loudly")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective config as TOML (with each value's source) and exit")
    return parser


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    keys = [f[2:].replace("-", "_") for f in FIELD_FLAGS] + ["dev", "debug"]
    return {key: getattr(args, key) for key in keys}


def load_app(spec: str, source: str = "default") -> object:
    """Import ``module:attr`` in the supervisor (preload), as a ConfigError on failure."""
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # any import-time failure of the app is the app key's fault
        raise ConfigError("app", source, f"cannot load {spec}: {type(exc).__name__}: {exc}") from None
    return obj


def check_app(app: object, settings: Settings, source: str) -> None:
    """The app must be a vango_mp App whose auth policy the reference allows."""
    from vango_mp.auth import AuthConfigError, check_config
    from vango_mp.router import App

    if not isinstance(app, App):
        raise ConfigError("app", source, f"{settings.app} is a {type(app).__name__}, not a vango_mp.router.App")
    try:
        check_config(app, settings)
    except AuthConfigError as exc:
        raise ConfigError("app", source, str(exc)) from None


def configure_logging(settings: Settings) -> None:
    handler: logging.Handler
    if settings.log_file:
        handler = logging.FileHandler(settings.log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if settings.debug else logging.INFO)


def main(argv: Sequence[str] | None = None, *, serve: Any = None) -> int:
    """Entry point of the ``vango-mp`` console script; returns the exit status.

    ``serve`` replaces ``vango_mp.worker.serve`` (for tests of the supervisor alone).
    """
    args = build_parser().parse_args(argv)
    flags = flag_values(args)

    def reload_settings() -> Settings:
        return load_settings(flags, os.environ, args.config)[0]

    try:
        settings, sources = load_settings(flags, os.environ, args.config)
        if args.print_config:
            sys.stdout.write(render_toml(settings, sources))
            return EXIT_OK
        configure_logging(settings)
        gc.disable()  # until the fork: keep preloaded objects' pages untouched (gc.freeze)
        app = load_app(settings.app, sources["app"])
        check_app(app, settings, sources["app"])
    except ConfigError as exc:
        gc.enable()
        print(f"vango-mp: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from .arbiter import Arbiter

    if serve is None:
        from vango_mp.worker import serve
    arbiter = Arbiter(settings, app, serve=serve, reload_settings=reload_settings)
    status = arbiter.run()
    gc.enable()
    return status


if __name__ == "__main__":
    sys.exit(main())
