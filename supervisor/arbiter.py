"""The supervisor: fork one worker per slot, keep them alive, obey signals.

Modelled on gunicorn's arbiter. The loop is synchronous and single-threaded
(a selector over the signal wakeup fd and the bus sockets); signal handlers
only queue (see :mod:`supervisor.wakeup`); each step of :meth:`Arbiter.run_once`
is a named method. Stopping is by exception: :class:`StopServer` after a
clean stop, :class:`HaltServer` (crash intensity exceeded) -- both caught in
:meth:`Arbiter.run`, which calls :meth:`Arbiter.halt`.

Signals: TERM/INT graceful stop (workers get SIGTERM and ``graceful_timeout``,
then SIGKILL; exit 0); QUIT quick stop (SIGQUIT, then SIGKILL after
``QUIT_TIMEOUT``); HUP rolling reload; TTIN/TTOU one slot more/less (never
below one); USR1 reopen log files (ours, and every worker's via the bus).
The rolling reload and memory recycling steps are a :class:`RollingReload`
the arbiter owns (:mod:`supervisor.reload`). Workers are forked by the
template process (:mod:`supervisor.template`), forked once right after the
preload, and re-parented to us (we are a child subreaper).

The supervisor never runs app code after the preload and starts no threads
(PR_SET_PDEATHSIG fires when the forking *thread* exits) but one: with
``store_url``, the hub's Redis link (:mod:`supervisor.redislink`), started
after the template is forked; this thread never forks.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import selectors
import shutil
import signal
import socket
import sqlite3
import time
from collections.abc import Callable

from vango_mp import store
from vango_mp.appload import AppLoadError, load_app
from vango_mp.bus import reopen_log_files
from vango_mp.listener import create_listener
from vango_mp.memory import PressureLevel, detect_budget, trim_heap
from vango_mp.settings import Settings

from .config import ConfigError, keep_restart_keys, parse_bind, resolve_workers
from .errors import EXIT_INTERNAL, EXIT_OK, EXIT_STARTUP, WORKER_EXIT_ERROR, WORKER_EXIT_OK, HaltServer, StopServer, describe_exit
from . import redislink
from .hub import Hub, make_runtime_dir
from .memwatch import MemoryWatch
from .notify import Notifier
from .reload import RollingReload
from .slots import Slot, Worker
from .template import SpawnRequest, Template
from .wakeup import WakeupSignals
from .watch import SourceWatch

log = logging.getLogger("vango_mp.supervisor")

Serve = Callable[..., None]

QUIT_TIMEOUT = 2.0  # SIGQUIT'ed workers get this long before SIGKILL
MAX_WAIT = 1.0  # the loop wakes at least this often
# The steps after the bus and signals run at most this often: every bus message wakes the
# loop (two per WebSocket for the census), and those wakeups need nothing more.
HOUSEKEEPING = 0.05
HEALTHY_HEARTBEATS = 3  # WATCHDOG=1 only if every worker spoke within this many heartbeats


class Arbiter:
    """Own the slots, their sockets, the bus hub and every worker process."""

    SIGNALS = [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM,
               signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGCHLD]
    SIG_NAMES = {int(sig): sig.name[3:].lower() for sig in SIGNALS}

    def __init__(
        self,
        settings: Settings,
        app: object,
        *,
        serve: Serve,
        reload_settings: Callable[[], Settings] | None = None,
        notifier: Notifier | None = None,
        watch: SourceWatch | None = None,
    ) -> None:
        # ``app`` is None with ``--reload``: each worker imports it fresh (load_app in run_child).
        self.settings, self.app, self.serve = settings, app, serve
        self.watch = watch  # --reload: the app's source files; a change reloads every slot
        self.reload_pending = False  # a change seen while a reload was under way
        self.reload_settings = reload_settings
        self.notifier = notifier or Notifier()
        self.pid = os.getpid()
        self.secret = secrets.token_bytes(32)  # shared by all workers: CSRF and session blobs
        self.selector = selectors.DefaultSelector()
        self.slots: list[Slot] = []
        self.workers: dict[int, Worker] = {}
        self.wakeup: WakeupSignals | None = None
        self.hub: Hub | None = None
        self.runtime_dir: str | None = None
        self.address: tuple[str, int] = parse_bind(settings.bind)
        self.stopping = False
        self.housekeeping_at = 0.0  # see run_once
        self.changed = True  # a signal or an exit since the last housekeeping: do it now
        self.ready_sent = False
        self.memwatch = MemoryWatch(settings, detect_budget(settings.memory_budget))
        self.rolling = RollingReload(self, self.notifier, settings=lambda: self.settings,
                                     status_line=self.status_line, on_slot_done=trim_heap)
        self.template = Template(self.run_child, close_inherited=self.close_in_template)

    # ------------------------------------------------------------ main loop

    def run(self) -> int:
        """Start, loop until stopped, return the exit status."""
        try:
            self.start()
            while True:
                self.run_once()
        except StopServer:
            return self.halt("stopped", EXIT_OK)
        except HaltServer as exc:
            return self.halt(exc.reason, exc.exit_status)
        except Exception:
            # A bug of ours. Stopping the workers gracefully lets them hand their
            # sessions to the store; dying would leave them to the parent-death signal.
            log.exception("unhandled error in the supervisor loop")
            return self.halt("internal error", EXIT_INTERNAL)

    def run_once(self) -> None:
        self.wait(self.next_timeout())
        self.dispatch_signals()
        self.reap_workers()
        now = time.monotonic()
        if now < self.housekeeping_at and not self.changed:
            return  # woken by bus traffic only: the hub has done its part in wait()
        self.housekeeping_at, self.changed = now + HOUSEKEEPING, False
        self.murder_workers()
        self.manage_workers()
        self.check_sources()
        self.check_memory()
        self.notify_systemd()

    def start(self) -> None:
        """Signals, runtime dir, bus hub, slot sockets, first forks."""
        self.wakeup = WakeupSignals(self.SIGNALS)
        self.selector.register(self.wakeup, selectors.EVENT_READ, lambda mask: self.wakeup.drain())
        try:
            self.runtime_dir = make_runtime_dir(self.settings.runtime_dir)
            self.hub = Hub(os.path.join(self.runtime_dir, "bus.sock"), self.selector,
                           lookup_worker=self.lookup_worker, max_frame=self.settings.bus_max_frame,
                           max_backlog=self.settings.bus_max_backlog)
            for _ in range(resolve_workers(self.settings)):
                self.add_slot()
            if self.settings.state_dir:
                store.prepare(self.settings.state_dir)
            self.template.start()  # before any traffic: the lean parent of every worker
            if self.settings.store_url:  # one machine of several: after the fork, the link is a thread
                redislink.attach(self.hub, self.settings.store_url, self.settings.persistence_secret,
                                 self.address[1], self.selector)
        except (OSError, sqlite3.Error) as exc:
            raise HaltServer(f"cannot start: {exc}", EXIT_STARTUP) from None
        host, port = self.address
        log.info("listening on http://%s:%d with %d workers (supervisor pid %d)",
                 f"[{host}]" if ":" in host else host, port, len(self.slots), self.pid)
        self.spawn_workers()
        gc.enable()  # the CLI disabled it for the preload; gc.freeze() before each fork keeps COW

    def wait(self, timeout: float) -> None:
        """Block in the selector; callbacks drain the wakeup fd and serve the bus."""
        for key, mask in self.selector.select(max(0.0, timeout)):
            key.data(mask)

    def next_timeout(self) -> float:
        now = time.monotonic()
        due = [s.respawn_at - now for s in self.slots if s.idle and not s.retiring]
        if self.stopping or self.rolling.busy:
            due.append(0.1)
        if self.watch is not None:
            due.append(self.watch.due_in())
        return min([MAX_WAIT, *due])

    def dispatch_signals(self) -> None:
        """Run ``handle_<name>`` for each queued signal; unknown ones are logged and skipped."""
        assert self.wakeup is not None
        for signum in self.wakeup.pop_all():
            name = self.SIG_NAMES.get(signum)
            handler = getattr(self, f"handle_{name}", None) if name else None
            if handler is None:
                log.warning("ignoring unexpected signal %d", signum)
                continue
            if signum != signal.SIGCHLD:
                log.info("received SIG%s", name.upper())
            self.changed = True
            handler()

    # ------------------------------------------------------------ signal handlers

    def handle_chld(self) -> None:
        """Nothing: reap_workers runs on every loop turn anyway."""

    def handle_term(self) -> None:
        self.begin_stop(signal.SIGTERM, self.settings.graceful_timeout)

    handle_int = handle_term

    def handle_quit(self) -> None:
        self.begin_stop(signal.SIGQUIT, min(QUIT_TIMEOUT, self.settings.graceful_timeout))

    def handle_hup(self) -> None:
        """Re-read the config, then replace each slot's worker in turn (a recycle becomes its first step)."""
        if self.stopping or self.rolling.reloading:
            log.warning("HUP ignored: %s", "stopping" if self.stopping else "a reload is in progress")
            return
        try:
            self.apply_new_settings()
        except ConfigError as exc:
            log.error("HUP: keeping the old config: %s", exc)
            return
        self.rolling.begin_reload(s.index for s in self.slots if not s.retiring)

    def apply_new_settings(self) -> None:
        if self.reload_settings is None:
            return
        new = self.reload_settings()
        for key in keep_restart_keys(self.settings, new):
            log.warning("HUP: %s changed; that takes a restart", key)
        self.settings = new
        self.memwatch.reconfigure(new, detect_budget(new.memory_budget))

    def handle_ttin(self) -> None:
        if self.stopping:
            return
        try:
            slot = self.add_slot()
        except OSError as exc:
            log.error("TTIN: cannot open another listener: %s", exc)
            return
        log.info("TTIN: added slot %d (%d workers)", slot.index, self.active_count())

    def handle_ttou(self) -> None:
        active = [s for s in self.slots if not s.retiring]
        if self.stopping or len(active) <= 1:
            log.warning("TTOU ignored: keeping at least one worker")
            return
        slot = active[-1]
        slot.retiring = True
        # Leave the SO_REUSEPORT group now: once its worker stops accepting,
        # the kernel must stop queueing new connections on this socket.
        slot.sock.close()
        self.stop_slot_workers(slot)
        log.info("TTOU: retiring slot %d (%d workers)", slot.index, self.active_count())

    def handle_usr1(self) -> None:
        """Reopen our log file (logrotate moved it), and have every worker do the same."""
        reopen_log_files()
        log.info("reopened log files")
        if self.hub is not None:
            self.hub.order("reopen_logs")

    # ------------------------------------------------------------ slots and workers

    def add_slot(self) -> Slot:
        """A new slot with its own SO_REUSEPORT socket on the shared address."""
        host, port = self.address
        sock = create_listener(host, port)
        if port == 0:  # the first slot picked the port; the others join it
            self.address = (host, sock.getsockname()[1])
        index = max((s.index for s in self.slots), default=-1) + 1
        slot = Slot(index, sock)
        self.slots.append(slot)
        return slot

    def active_count(self) -> int:
        return sum(1 for s in self.slots if not s.retiring)

    def lookup_worker(self, pid: int) -> tuple[int, int] | None:
        """(slot, generation) of one of our workers, for the hub."""
        worker = self.workers.get(pid)
        return (worker.slot, worker.generation) if worker else None

    def slot_of(self, index: int) -> Slot | None:
        return next((s for s in self.slots if s.index == index), None)

    def spawn_workers(self) -> None:
        """Fork into every idle slot whose backoff has passed."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.idle and not slot.retiring and now >= slot.respawn_at:
                self.spawn_worker(slot)

    def spawn_worker(self, slot: Slot, *, successor: bool = False) -> int:
        """Have the template fork one worker into ``slot``; its pid."""
        assert self.hub is not None
        slot.generation += 1
        request = SpawnRequest(slot.index, slot.generation, self.settings, self.hub.path)
        pid = self.template.spawn(request, slot.sock)
        self.workers[pid] = Worker(pid, slot.index, slot.generation, time.monotonic())
        if successor:
            slot.successor = pid
        else:
            slot.pid = pid
        log.info("spawned worker pid %d in slot %d (generation %d)", pid, slot.index, slot.generation)
        return pid

    def is_running(self, pid: int) -> bool:
        """Not reaped yet."""
        return pid in self.workers

    def close_in_template(self) -> None:
        """In the template (forked from us): drop our signal handling and every fd but its socketpair."""
        assert self.wakeup is not None
        self.wakeup.reset_in_child()
        if self.hub is not None:
            self.hub.close_in_child()
        self.selector.close()
        self.notifier.close()
        for slot in self.slots:
            slot.sock.close()  # a worker gets its own slot's socket with the spawn request

    def run_child(self, request: SpawnRequest, sock: socket.socket) -> int:
        """In a new worker (forked by the template): serve ``sock`` until stopped; the exit status.

        With ``--reload`` the app is imported here, fresh: neither we nor the
        template imported it. An app that fails to import exits
        WORKER_EXIT_ERROR (a reload then aborts and the old worker serves on).
        """
        gc.enable()
        sock.setblocking(False)
        app = self.app
        if app is None:
            try:
                app = load_app(request.settings.app)
            except AppLoadError as exc:
                log.error("worker in slot %d: %s", request.slot, exc)
                return WORKER_EXIT_ERROR
        self.serve(request.settings, request.slot, sock, bus_path=request.bus_path, secret=self.secret, app=app)
        return WORKER_EXIT_OK

    def stop_worker(self, pid: int | None, sig: int, deadline: float) -> None:
        """Ask one worker to stop; its exit is then expected, SIGKILL after ``deadline``."""
        worker = self.workers.get(pid) if pid is not None else None
        if worker is None:
            return
        worker.stopping = True
        worker.stop_deadline = min(deadline, worker.stop_deadline or deadline)
        self.kill_worker(worker.pid, sig)

    def stop_slot_workers(self, slot: Slot, sig: int = signal.SIGTERM) -> None:
        deadline = time.monotonic() + self.settings.graceful_timeout
        for pid in (slot.pid, slot.successor):
            self.stop_worker(pid, sig, deadline)

    def kill_worker(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:  # already gone; reap_workers will collect it
            pass

    def reap_workers(self) -> None:
        """Collect every exited child without blocking."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            self.changed = True
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self.handle_exit(worker, code)
            elif self.template.exited(pid, code) and not self.stopping:
                self.template.revive()

    def handle_exit(self, worker: Worker, code: int) -> None:
        """Free the slot; an unexpected exit is a crash (respawn with backoff, or halt)."""
        slot = self.slot_of(worker.slot)
        expected = worker.stopping or self.stopping
        if slot is not None:
            if slot.pid == worker.pid:
                slot.pid = None
            if slot.successor == worker.pid:
                slot.successor = None
                self.rolling.abort(f"replacement in slot {slot.index} exited ({describe_exit(code)})")
                # --reload: an edit that does not import is the author's work in progress,
                # not a crash; the old worker serves on until the next change.
                expected = expected or self.watch is not None
        if expected:
            log.info("worker pid %d (slot %d) exited: %s", worker.pid, worker.slot, describe_exit(code))
            return
        log.error("worker pid %d (slot %d) crashed: %s", worker.pid, worker.slot, describe_exit(code))
        if slot is not None and not slot.retiring:
            self.record_crash(slot, worker)

    def record_crash(self, slot: Slot, worker: Worker) -> None:
        now = time.monotonic()
        s = self.settings
        crashes = slot.record_crash(now, now - worker.started, period=s.crash_period,
                                    backoff_min=s.respawn_backoff_min, backoff_max=s.respawn_backoff_max)
        if crashes > s.crash_intensity:
            raise HaltServer(f"slot {slot.index} crashed {crashes} times within {s.crash_period:g}s")
        log.info("respawning slot %d in %.1fs", slot.index, slot.backoff)

    def murder_workers(self) -> None:
        """SIGKILL workers past their stop deadline or abort grace; SIGABRT silent ones."""
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if worker.stop_deadline is not None and now > worker.stop_deadline:
                log.warning("worker pid %d did not stop in time: SIGKILL", worker.pid)
                worker.stop_deadline = float("inf")  # one SIGKILL is enough
                self.kill_worker(worker.pid, signal.SIGKILL)
            elif worker.aborted_at is not None:
                if now - worker.aborted_at > self.settings.abort_timeout:
                    worker.aborted_at = float("inf")
                    self.kill_worker(worker.pid, signal.SIGKILL)
            elif not worker.stopping and self.silent_for(worker, now) > self.settings.heartbeat_timeout:
                log.error("worker pid %d (slot %d) missed its heartbeats: SIGABRT", worker.pid, worker.slot)
                worker.aborted_at = now
                self.kill_worker(worker.pid, signal.SIGABRT)

    def silent_for(self, worker: Worker, now: float) -> float:
        """Seconds since the worker last spoke on the bus (or since its fork)."""
        peer = self.hub.peer_for(worker.pid) if self.hub else None
        return now - (peer.last_seen if peer is not None else worker.started)

    def is_ready(self, pid: int | None) -> bool:
        peer = self.hub.peer_for(pid) if self.hub else None
        return peer is not None and peer.ready

    def manage_workers(self) -> None:
        """Respawn, advance a reload, drop retired slots; finish a stop."""
        if self.stopping:
            if not self.workers:
                raise StopServer()
            return
        self.spawn_workers()
        self.rolling.step()
        self.remove_retired_slots()
        if self.hub is not None:
            self.hub.expire_requests(time.monotonic())

    def remove_retired_slots(self) -> None:
        for slot in [s for s in self.slots if s.retiring and s.idle]:
            # Connections still queued on this socket are reset by the close;
            # the worker stopped accepting first, so that is only a short window.
            slot.sock.close()
            self.slots.remove(slot)

    # ------------------------------------------------------------ stop

    def begin_stop(self, sig: int, timeout: float) -> None:
        """Order every worker to stop; the loop ends (StopServer) when all are reaped."""
        if self.stopping and sig == signal.SIGTERM:
            return  # already stopping; a second TERM changes nothing
        self.stopping = True
        self.rolling.cancel()
        self.notifier.stopping()
        if self.hub is not None:
            # Before the signals: stopping workers then keep their sessions in
            # the store instead of handing them to peers that are leaving too.
            self.hub.order("cluster_stopping")
        deadline = time.monotonic() + timeout
        for pid in list(self.workers):
            self.stop_worker(pid, sig, deadline)

    def halt(self, reason: str, status: int) -> int:
        """Stop what is left, release every resource, return ``status``."""
        (log.info if status == EXIT_OK else log.error)("supervisor exiting (%s), status %d", reason, status)
        if self.workers:
            self.stop_all_blocking()
        self.template.close()
        if self.hub is not None and self.hub.redis is not None:
            self.hub.redis.close()
        if self.hub is not None:
            self.hub.close()
        for slot in self.slots:
            slot.sock.close()
        if self.wakeup is not None:
            self.wakeup.close()
        if self.runtime_dir is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        self.notifier.close()
        return status

    def stop_all_blocking(self) -> None:
        """After a halt: TERM everyone, wait out the graceful timeout, SIGKILL the rest."""
        self.begin_stop(signal.SIGTERM, self.settings.graceful_timeout)
        while self.workers:
            self.wait(0.1)
            if self.wakeup is not None:
                self.wakeup.pop_all()  # a halt is not interruptible
            self.reap_workers()
            self.murder_workers()

    # ------------------------------------------------------------ --reload

    def check_sources(self) -> None:
        """``--reload``: an app source file changed, so replace every worker (they import it fresh)."""
        if self.watch is None or self.stopping:
            return
        changed = self.watch.changed()
        if changed:
            log.info("--reload: %s changed; reloading the workers", ", ".join(os.path.relpath(p) for p in changed[:3])
                     + (f" and {len(changed) - 3} more" if len(changed) > 3 else ""))
            self.reload_pending = True
        if self.reload_pending and not self.rolling.busy:
            self.reload_pending = False
            self.rolling.begin_reload(s.index for s in self.slots if not s.retiring)

    # ------------------------------------------------------------ memory

    def check_memory(self) -> None:
        """Tell workers the machine-level memory pressure; recycle one that owns too much."""
        if self.hub is None or self.stopping:
            return
        slot = self.memwatch.check(self.hub, [s for s in self.slots if not s.retiring], time.monotonic(),
                                   can_recycle=not self.rolling.busy)
        if slot is not None:
            self.rolling.begin_recycle(slot.index)

    # ------------------------------------------------------------ systemd

    def notify_systemd(self) -> None:
        """READY=1 once every slot's worker is ready; STATUS=; WATCHDOG=1 while all heartbeat."""
        if self.stopping:
            return
        if not self.ready_sent and self.all_ready():
            self.ready_sent = True
            log.info("all %d workers ready", self.active_count())
            self.notifier.ready(self.status_line())
            return
        self.notifier.status(self.status_line())
        now = time.monotonic()
        if self.ready_sent and self.all_heartbeating(now):
            self.notifier.watchdog(now)

    def all_ready(self) -> bool:
        return all(self.is_ready(s.pid) for s in self.slots if not s.retiring)

    def all_heartbeating(self, now: float) -> bool:
        limit = max(HEALTHY_HEARTBEATS * self.settings.worker_heartbeat, 1.0)
        return all(self.silent_for(w, now) <= limit for w in self.workers.values() if not w.stopping)

    def status_line(self) -> str:
        attached, detached, pressure = self.hub.summary() if self.hub else (0, 0, PressureLevel.NONE)
        ready = sum(1 for s in self.slots if not s.retiring and self.is_ready(s.pid))
        return (f"{ready}/{self.active_count()} workers ready; sessions {attached} attached, "
                f"{detached} detached; memory pressure {pressure}")
