"""``vango-mp``: parse flags, build the config, preload the app, run the arbiter.

``vango-mp --lone`` runs one worker in this process instead: no supervisor,
no bus, no fork (benchmarks and debugging), built from the same flags >
``VANGO_*`` > TOML > defaults as a supervised one.

Exit statuses (see :mod:`supervisor.errors`): 0 after TERM/INT/QUIT, 1 when a
slot crashed too often, 2 for an invalid config or an app that cannot be
loaded (one line on stderr naming the key; nothing is forked), 3 when the
listener or the bus cannot be created.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import secrets
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from vango_mp import appload, store
from vango_mp.listener import create_listener
from vango_mp.observability import logs
from vango_mp.router import App
from vango_mp.settings import Settings

from .config import ConfigError, load_settings, parse_bind, render_toml
from .errors import EXIT_CONFIG, EXIT_OK, EXIT_STARTUP
from .watch import SourceWatch, watch_root

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
    "--max-worker-rss": "owned bytes (USS) above which a worker is recycled (default: its share of the hard limit)",
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
    parser.add_argument("--reload", action="store_true",
                        help="with --dev: restart the workers, importing the app afresh, when its .py files change")
    parser.add_argument("--lone", action="store_true",
                        help="one worker in this process: no supervisor, no bus (benchmarks, debugging)")
    return parser


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    keys = [f[2:].replace("-", "_") for f in FIELD_FLAGS] + ["dev", "debug"]
    return {key: getattr(args, key) for key in keys}


def load_app(spec: str, source: str = "default") -> App:
    """Import the App ``module:attr`` (:func:`vango_mp.appload.load_app`), as a ConfigError on failure."""
    try:
        return appload.load_app(spec)
    except appload.AppLoadError as exc:  # any import-time failure of the app is the app key's fault
        raise ConfigError("app", source, str(exc)) from None


def check_app(app: App, settings: Settings, source: str) -> None:
    """The app's auth policy must be one the reference allows."""
    from vango_mp.auth import AuthConfigError, check_config

    try:
        check_config(app, settings)
    except AuthConfigError as exc:
        raise ConfigError("app", source, str(exc)) from None


def add_cwd_to_path() -> None:
    """``--app mod:attr`` finds ``mod`` in the current directory, as ``uvicorn`` does.

    ``python -m`` puts the current directory on ``sys.path``; the console
    script puts its own bin directory there instead.
    """
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def check_app_elsewhere(spec: str, settings: Settings, source: str) -> None:
    """``--reload``: load and check the app in a short-lived child, so this process never imports it.

    Raises the ConfigError the child met (its one line), as :func:`load_app` would here.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports through the pipe and never returns
        os.close(read_end)
        problem = b""
        try:
            check_app(load_app(spec, source), settings, source)
        except ConfigError as exc:
            problem = exc.problem.encode()
        except BaseException as exc:  # anything else the import did
            problem = f"cannot check {spec}: {type(exc).__name__}: {exc}".encode()
        os.write(write_end, problem[:4000])
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        problem = pipe.read().decode(errors="replace")
    os.waitpid(pid, 0)
    if problem:
        raise ConfigError("app", source, problem)


def configure_logging(settings: Settings) -> None:
    handler: logging.Handler
    if settings.log_file:
        handler = logging.FileHandler(settings.log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.formatter(settings.log_format, LOG_FORMAT))  # text, or one JSON object a line
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if settings.debug else logging.INFO)


def main(argv: Sequence[str] | None = None, *, serve: Any = None) -> int:
    """Entry point of the ``vango-mp`` console script; returns the exit status.

    ``serve`` replaces ``vango_mp.worker.serve`` (for tests of the supervisor alone).
    """
    args = build_parser().parse_args(argv)
    flags = flag_values(args)
    add_cwd_to_path()

    def reload_settings() -> Settings:
        return load_settings(flags, os.environ, args.config)[0]

    try:
        settings, sources = load_settings(flags, os.environ, args.config)
        if args.print_config:
            sys.stdout.write(render_toml(settings, sources))
            return EXIT_OK
        configure_logging(settings)
        if args.reload and (args.lone or not settings.dev):
            raise ConfigError("reload", "flag", "--reload needs --dev and a supervisor (not --lone)")
        if not args.lone:
            gc.disable()  # until the fork: keep preloaded objects' pages untouched (gc.freeze)
        if args.reload:  # the supervisor must not hold the app's code: check it in a child
            app = None
            check_app_elsewhere(settings.app, settings, sources["app"])
        else:
            app = load_app(settings.app, sources["app"])
            check_app(app, settings, sources["app"])
    except ConfigError as exc:
        gc.enable()
        print(f"vango-mp: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if serve is None:
        from vango_mp.worker import serve
    if args.lone:
        return run_lone(settings, app, serve)
    from .arbiter import Arbiter

    watch = SourceWatch(watch_root(settings.app)) if args.reload else None
    arbiter = Arbiter(settings, app, serve=serve, reload_settings=reload_settings, watch=watch)
    status = arbiter.run()
    gc.enable()
    return status


def run_lone(settings: Settings, app: App, serve: Any) -> int:
    """``--lone``: serve slot 0 in this process until TERM/INT; no supervisor, no bus.

    The worker's share of the memory budget is the whole budget (``workers``
    is taken as 1). Exit 3 when the listener or the store cannot be created.
    """
    settings = dataclasses.replace(settings, workers=1)
    host, port = parse_bind(settings.bind)
    try:
        sock = create_listener(host, port)
        if settings.state_dir:
            store.prepare(settings.state_dir)
    except (OSError, sqlite3.Error) as exc:
        print(f"vango-mp: cannot start: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    host, port = sock.getsockname()[:2]
    logging.getLogger("vango_mp.supervisor").info(
        "listening on http://%s:%d with a lone worker (pid %d; no supervisor, no bus)",
        f"[{host}]" if ":" in host else host, port, os.getpid())
    try:
        serve(settings, 0, sock, bus_path=None, secret=secrets.token_bytes(32), app=app)
    finally:
        sock.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
