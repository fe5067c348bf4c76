"""The worker template and a lean supervisor, with the real supervisor and the stub worker.

Workers are forked by the template (forked once after the preload) and
re-parented to the supervisor; a new worker's memory must not depend on what
the supervisor holds, and relaying big bus frames must not grow the supervisor.
Every wait has a deadline; only processes these tests started are signalled.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import psutil
import pytest

from tests.conftest import Server

from .test_supervisor import cleanup, get, gone, launch, pid_in_slot, wait_for, workers_of  # noqa: F401

pytestmark = pytest.mark.timeout(120)

MIB = 1024 * 1024
_TEMPLATE = r"forked the worker template, pid (\d+)"


def templates(server: Server) -> list[int]:
    """Every template pid the supervisor forked, oldest first."""
    return [int(pid) for pid in re.findall(_TEMPLATE, server.output())]


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def serving(server: Server, slot: int) -> bool:
    """A request (on a fresh connection) was answered by ``slot``."""
    return any(get(server, "/")[1].get("X-Vango-Worker") == str(slot) for _ in range(8))


def answered(server: Server, path: str) -> bool:
    """``path`` answered 200 (the stub answers 409 on the wrong slot: ask again)."""
    return get(server, path)[0] == 200


def test_workers_are_the_supervisors_children_and_the_template_holds_no_listener() -> None:
    server = launch("--workers", "2", stub=True)
    (template,) = templates(server)
    supervisor = psutil.Process(server.pid)
    assert psutil.Process(template).ppid() == server.pid
    workers = workers_of(server)
    assert sorted(workers.values()) == [0, 1] and template not in workers
    assert all(psutil.Process(pid).ppid() == server.pid for pid in workers)
    assert psutil.Process(template).net_connections("tcp") == []  # no slot socket: TTOU really closes one
    assert len([c for c in supervisor.net_connections("tcp") if c.status == psutil.CONN_LISTEN]) == 2
    server.proc.send_signal(signal.SIGTTIN)
    wait_for(lambda: serving(server, 2), what="slot 2 serving")
    assert psutil.Process(pid_in_slot(server, 2)).ppid() == server.pid
    assert templates(server) == [template]  # one template for the supervisor's whole life
    assert psutil.Process(template).net_connections("tcp") == []


def test_a_dead_template_is_replaced_and_slots_still_respawn() -> None:
    server = launch("--workers", "1", stub=True)
    (first,) = templates(server)
    os.kill(first, signal.SIGKILL)
    server.wait_output(rf"worker template pid {first} died: killed by SIGKILL")
    wait_for(lambda: len(templates(server)) == 2, what="a new template")
    second = templates(server)[1]
    assert psutil.Process(second).ppid() == server.pid
    victim = pid_in_slot(server, 0)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: pid_in_slot(server, 0) != victim, what="slot 0 respawned")
    assert psutil.Process(pid_in_slot(server, 0)).ppid() == server.pid
    wait_for(lambda: serving(server, 0), what="slot 0 serving")
    assert server.proc.poll() is None and "crashed" in server.output()  # the worker's death, not the template's


def test_a_silent_template_is_discarded_and_the_worker_forked_by_a_new_one() -> None:
    server = launch("--workers", "1", stub=True)
    (stuck,) = templates(server)
    os.kill(stuck, signal.SIGSTOP)  # alive but deaf: the spawn request times out (REPLY_TIMEOUT)
    victim = pid_in_slot(server, 0)
    os.kill(victim, signal.SIGKILL)
    server.wait_output(rf"discarding worker template pid {stuck}: it failed to fork a worker", timeout=20)
    wait_for(lambda: pid_in_slot(server, 0) != victim, what="slot 0 respawned")
    wait_for(lambda: serving(server, 0), what="slot 0 serving")
    assert len(templates(server)) == 2 and gone([stuck])


def test_the_template_dies_with_the_supervisor() -> None:
    server = launch("--workers", "1", stub=True)
    pids = [*templates(server), *workers_of(server)]
    server.proc.kill()
    server.proc.wait(5)
    wait_for(lambda: gone(pids), timeout=5, what="template and worker gone")


def test_a_new_worker_does_not_inherit_what_the_supervisor_holds() -> None:
    """The hub queues ~48 MiB for a worker that stopped reading; a worker forked meanwhile stays fresh."""
    server = launch("--workers", "2", stub=True, env={"VANGO_BUS_MAX_BACKLOG": "256MiB",
                                                         "VANGO_HEARTBEAT_TIMEOUT": "120s"})
    server.proc.send_signal(signal.SIGTTIN)
    wait_for(lambda: serving(server, 2), what="slot 2 serving")
    reference = rss(pid_in_slot(server, 2))  # a fresh worker, forked before the supervisor grew
    before = rss(server.pid)
    wait_for(lambda: answered(server, "/deaf?slot=1"), what="slot 1 deaf")
    wait_for(lambda: answered(server, "/relay?mib=48&size=4&to=1&wait=0"), what="48 MiB sent towards slot 1")
    wait_for(lambda: rss(server.pid) > before + 40 * MIB, timeout=30, what="the supervisor holding the frames")
    grown = rss(server.pid)
    server.proc.send_signal(signal.SIGTTIN)
    wait_for(lambda: serving(server, 3), what="slot 3 serving")
    fresh = rss(pid_in_slot(server, 3))
    assert fresh < reference + 12 * MIB, (
        f"worker forked while the supervisor held {(grown - before) // MIB} MiB more: "
        f"RSS {fresh // MIB} MiB, a fresh one before that {reference // MIB} MiB")


def test_relaying_200_mib_through_the_hub_does_not_grow_the_supervisor() -> None:
    server = launch("--workers", "2", stub=True)

    def relay(mib: int) -> int:
        status, _, body = get_long(server, f"/relay?mib={mib}&size=4")
        assert status == 200, body
        return int(json.loads(body)["sent"])

    before = rss(server.pid)
    assert relay(200) == 200 * MIB
    after = rss(server.pid)
    assert after - before <= 4 * MIB, f"supervisor RSS {before // MIB} -> {after // MIB} MiB relaying 200 MiB"


def get_long(server: Server, path: str) -> tuple[int, dict[str, str], bytes]:
    return server.get(path, timeout=60)


def test_a_worker_forked_after_a_log_rotation_logs_into_the_new_file(tmp_path: Path) -> None:
    log = tmp_path / "vango.log"
    server = launch("--workers", "1", "--log-file", str(log), stub=True, wait=False)
    wait_for(lambda: "all 1 workers ready" in log.read_text(), what="ready in the log file")
    server.port = int(re.search(r"listening on http://127.0.0.1:(\d+)", log.read_text()).group(1))  # type: ignore[union-attr]
    (victim,) = re.findall(r"spawned worker pid (\d+)", log.read_text())
    log.rename(tmp_path / "vango.log.1")
    server.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: log.exists() and "reopened log files" in log.read_text(), what="a reopened log")
    os.kill(int(victim), signal.SIGKILL)
    fresh = wait_for(lambda: re.findall(r"spawned worker pid (\d+)", log.read_text()), what="slot 0 respawned")[0]
    wait_for(lambda: get(server, "/")[0] == 200 and f"[{fresh}] INFO tornado.access" in log.read_text(),
             what="the new worker's access log in the new file")
