"""The template: a lean process every worker is forked from.

Why: the supervisor's heap grows with its history (the bus hub relays
session hand-overs, a few MiB each), and a child forked from it inherits all
of it. So right after the preload, before any traffic, the supervisor forks
one *template*; from then on every worker is forked by the template, whose
heap stays what it was after the preload (plus a pickled Settings per
spawn). A worker's starting memory does not depend on the supervisor's history.

How a worker is born (the supervisor's loop stays synchronous, no threads):

1. The supervisor sends one :class:`SpawnRequest` (slot, generation, the
   current Settings -- a HUP changes them --, the bus path) as a pickled
   SOCK_SEQPACKET packet with the slot's listening socket attached
   (SCM_RIGHTS), and blocks for the reply (milliseconds; REPLY_TIMEOUT).
2. The template forks an intermediate, which forks the worker and exits at
   once; the template reaps the intermediate and replies with the worker's pid.
3. The supervisor is a child subreaper (``PR_SET_CHILD_SUBREAPER``, set
   before the first template fork, so the template's descendants know it),
   so the orphaned worker is re-parented to it: its ``waitpid`` loop, exit
   codes and crash handling see a worker exactly as if it had forked it.
4. The worker waits until its parent *is* the supervisor, arms
   ``PR_SET_PDEATHSIG`` (SIGKILL) and checks the parent again; if the
   supervisor is gone it exits WORKER_EXIT_ORPHAN.

The template holds only its end of the socketpair: it closes the hub's
listener, the signal pipe, the notify socket and every slot socket it
inherited (a retired slot's socket must leave the SO_REUSEPORT group when
the supervisor closes it), and keeps each received slot socket only until
the fork. It never runs the hub or the selector. It dies with the supervisor
(parent-death signal) and on EOF of its socketpair. If it dies otherwise, the
supervisor forks a new one from itself (logged: that one starts from the
supervisor's current heap).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import pickle
import select
import signal
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from vango_mp.bus import reopen_log_files, set_parent_death_signal
from vango_mp.settings import Settings

from .errors import WORKER_EXIT_ERROR, WORKER_EXIT_OK, WORKER_EXIT_ORPHAN, describe_exit

log = logging.getLogger("vango_mp.supervisor")

PR_SET_CHILD_SUBREAPER = 36
REPLY_TIMEOUT = 5.0  # seconds the supervisor (its loop blocked) waits for a worker's pid
REPARENT_TIMEOUT = 10.0  # seconds a new worker waits to become the supervisor's child
MAX_PACKET = 1 << 20  # a pickled SpawnRequest is a few KiB
QUICK_DEATH = 1.0  # a replacement template dying younger than this is respawned only when a worker is needed


class TemplateError(OSError):
    """The template could not fork a worker (dead, silent, or its fork failed)."""


@dataclass(frozen=True, slots=True)
class SpawnRequest:
    """What a new worker needs besides its slot socket and what the template inherited."""

    slot: int
    generation: int
    settings: Settings
    bus_path: str


# In the worker: run it; returns the exit status. ``sock`` is the slot's listening socket.
WorkerMain = Callable[[SpawnRequest, socket.socket], int]


def set_child_subreaper() -> bool:
    """Make orphaned descendants our children (Linux ``PR_SET_CHILD_SUBREAPER``); False where missing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        return False


class Template:
    """The supervisor's handle on the template process: start it, ask it for workers, stop it."""

    def __init__(self, worker_main: WorkerMain, *, close_inherited: Callable[[], None]) -> None:
        self.worker_main = worker_main  # runs in each worker
        self.close_inherited = close_inherited  # runs in the template: drop the supervisor's fds
        self.supervisor = os.getpid()
        self.pid: int | None = None
        self.conn: socket.socket | None = None
        self.started = 0.0
        self.discarded: set[int] = set()  # templates we killed or closed: their exit is expected
        self.replacement = False  # the current template replaced one that died or failed
        self.died_young = False  # a replacement died at once: fork the next only when a worker is needed

    # ------------------------------------------------------------ supervisor side

    def start(self, *, reason: str = "") -> None:
        """Fork the template (before the first worker, and after it died)."""
        if not set_child_subreaper():
            raise TemplateError("PR_SET_CHILD_SUBREAPER unavailable: workers could not be re-parented")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        gc.freeze()  # what exists now is shared with the template and never collected by it
        pid = os.fork()
        if pid == 0:
            ours.close()
            _template_main(theirs, self.supervisor, self.worker_main, self.close_inherited)
        theirs.close()
        ours.settimeout(REPLY_TIMEOUT)
        self.pid, self.conn, self.started, self.died_young = pid, ours, time.monotonic(), False
        self.replacement = bool(reason)
        say = log.warning if reason else log.info
        say("forked the worker template, pid %d%s", pid, f" ({reason})" if reason else "")

    def spawn(self, request: SpawnRequest, sock: socket.socket) -> int:
        """Have the template fork a worker for ``request`` serving ``sock``; its pid.

        A template that is dead, silent or failing is replaced once (forked
        from the supervisor, logged) and asked again; a second failure raises
        :class:`TemplateError`.
        """
        if self.pid is None:
            self.start(reason="the previous one was gone")
        try:
            return self._ask(request, sock)
        except TemplateError as exc:
            self.discard(f"it failed to fork a worker: {exc}")
            self.start(reason="the previous one failed to fork a worker")
            return self._ask(request, sock)

    def _ask(self, request: SpawnRequest, sock: socket.socket) -> int:
        assert self.conn is not None
        try:
            socket.send_fds(self.conn, [pickle.dumps(request)], [sock.fileno()])
            data = self.conn.recv(MAX_PACKET)
        except OSError as exc:  # timeout included
            raise TemplateError(f"template pid {self.pid}: {exc or type(exc).__name__}") from None
        if not data:
            raise TemplateError(f"template pid {self.pid} closed its socket")
        reply = pickle.loads(data)
        if "error" in reply:
            raise TemplateError(f"template pid {self.pid}: {reply['error']}")
        return int(reply["pid"])

    def exited(self, pid: int, code: int) -> bool:
        """Our waitpid found ``pid``: True when it was a template (then forgotten)."""
        if pid in self.discarded:
            self.discarded.discard(pid)
            return True
        if pid != self.pid:
            return False
        log.error("worker template pid %d died: %s", pid, describe_exit(code))
        self._forget()
        self.died_young = self.replacement and time.monotonic() - self.started < QUICK_DEATH
        return True

    def revive(self) -> None:
        """After it died: fork a new template now, unless a replacement died young (then at the next spawn)."""
        if self.pid is None and not self.died_young:
            self.start(reason="the previous one died")

    def discard(self, why: str) -> None:
        """Kill the current template (its exit is then expected)."""
        if self.pid is None:
            return
        log.error("discarding worker template pid %d: %s", self.pid, why)
        self.discarded.add(self.pid)
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._forget()

    def _forget(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.pid, self.conn = None, None

    def close(self, timeout: float = 1.0) -> None:
        """Stop the template (EOF on its socket, SIGKILL if it lingers) and reap it."""
        pid = self.pid
        self._forget()
        for old in [*self.discarded, *([pid] if pid else [])]:
            _reap(old, timeout)
        self.discarded.clear()


def _reap(pid: int, timeout: float) -> None:
    """Wait up to ``timeout`` for ``pid`` to exit, then SIGKILL and wait (bounded either way)."""
    deadline = time.monotonic() + timeout
    try:
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            time.sleep(0.01)
    except (ChildProcessError, ProcessLookupError):  # already reaped (our waitpid(-1) loop)
        pass


# ------------------------------------------------------------ template side


def _template_main(conn: socket.socket, supervisor: int, worker_main: WorkerMain,
                   close_inherited: Callable[[], None]) -> None:
    """The template process: serve spawn requests until EOF; never returns."""
    status = 0
    try:
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != supervisor:  # the supervisor died before prctl armed the signal
            os._exit(WORKER_EXIT_ORPHAN)
        close_inherited()
        # Ctrl-C and a terminal hangup reach the whole process group; the supervisor handles them.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        gc.disable()  # never walk (and so copy) the preloaded objects' pages
        conn.settimeout(None)
        _serve_requests(conn, supervisor, worker_main)
    except BaseException:
        log.exception("worker template failed")
        status = WORKER_EXIT_ERROR
    finally:
        _flush_logs()
        os._exit(status)


def _serve_requests(conn: socket.socket, supervisor: int, worker_main: WorkerMain) -> None:
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(conn, MAX_PACKET, 1)
        except InterruptedError:
            continue
        if not data:
            return  # the supervisor closed its end (or died): so do we
        socks = [socket.socket(fileno=fd) for fd in fds]
        try:
            request = pickle.loads(data)
            if not isinstance(request, SpawnRequest) or len(socks) != 1:
                raise ValueError("malformed spawn request")
            reopen_log_files()  # the worker inherits our handlers: not a log file logrotate moved since
            reply: dict[str, object] = {"pid": _fork_worker(conn, supervisor, request, socks[0], worker_main)}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            for sock in socks:
                sock.close()  # the template keeps no slot socket
        conn.send(pickle.dumps(reply))


def _fork_worker(conn: socket.socket, supervisor: int, request: SpawnRequest, sock: socket.socket,
                 worker_main: WorkerMain) -> int:
    """Double-fork: the intermediate forks the worker and exits, so the supervisor adopts it."""
    read_end, write_end = os.pipe()
    try:
        middle = os.fork()
        if middle == 0:
            os.close(read_end)
            _intermediate(conn, write_end, supervisor, request, sock, worker_main)
        os.close(write_end)
        write_end = -1
        data = b""
        while len(data) < 4:
            chunk = os.read(read_end, 4 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_end)
        if write_end != -1:
            os.close(write_end)
    os.waitpid(middle, 0)
    if len(data) != 4:
        raise OSError("the intermediate process failed to fork the worker")
    return int(struct.unpack("i", data)[0])


def _intermediate(conn: socket.socket, write_end: int, supervisor: int, request: SpawnRequest,
                  sock: socket.socket, worker_main: WorkerMain) -> None:
    status = 1
    try:
        pid = os.fork()
        if pid == 0:
            os.close(write_end)
            conn.close()
            _worker(supervisor, request, sock, worker_main)
        os.write(write_end, struct.pack("i", pid))
        status = 0
    finally:
        os._exit(status)


def _worker(supervisor: int, request: SpawnRequest, sock: socket.socket, worker_main: WorkerMain) -> None:
    """In the new worker: become the supervisor's child, die with it, run; never returns."""
    status = WORKER_EXIT_ERROR
    try:
        if not await_parent(supervisor, REPARENT_TIMEOUT):
            os._exit(WORKER_EXIT_ORPHAN)
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != supervisor:  # it died between the check and the prctl
            os._exit(WORKER_EXIT_ORPHAN)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)  # the template ignored it; a worker never did
        status = worker_main(request, sock)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else WORKER_EXIT_OK if exc.code is None else WORKER_EXIT_ERROR
    except BaseException:
        log.exception("worker in slot %d failed", request.slot)
    finally:
        _flush_logs()
        os._exit(status)


def await_parent(expected: int, timeout: float) -> bool:
    """Wait until our parent is ``expected`` (the subreaper adopts us once the intermediate exits).

    False when we land elsewhere (the supervisor is gone: init or an outer
    subreaper adopted us) or after ``timeout``. Waits on a pidfd of the
    intermediate where the kernel has them (readable once it exited, after
    the re-parenting), else polls.
    """
    born_to = os.getppid()
    deadline = time.monotonic() + timeout
    while True:
        parent = os.getppid()
        if parent == expected:
            return True
        if parent != born_to or time.monotonic() > deadline:
            return False
        _wait_for_exit(born_to, min(0.05, max(0.0, deadline - time.monotonic())))


def _wait_for_exit(pid: int, timeout: float) -> None:
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):  # gone already, or no pidfd: poll
        time.sleep(0.001)
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:
            pass
