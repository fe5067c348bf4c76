"""Every tunable of a worker, with the reference runtime's defaults.

The supervisor's config loader fills a :class:`Settings` from flags, ``VANGO_*``
environment variables and the TOML file; workers only read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(slots=True)
class Settings:
    """Effective configuration; units are seconds and bytes."""

    # Serving
    bind: str = "127.0.0.1:8080"
    workers: int = 0  # 0 = one per CPU
    app: str = "vango_mp.demo:app"
    dev: bool = False  # turns off origin check, CSRF and secure cookies
    debug: bool = False  # signal writes during render raise; unserializable state fails loudly
    graceful_timeout: float = 30.0
    uvloop: bool = False  # run workers on uvloop (the 'uvloop' extra); off: no steady win measured (bench/README.md)
    allowed_origins: list[str] = field(default_factory=list)
    trusted_proxies: list[str] = field(default_factory=list)
    secure_cookies: bool = True
    log_file: str | None = None
    runtime_dir: str | None = None  # bus sockets; default a private temp dir
    state_dir: str | None = None
    store_url: str = ""  # redis://HOST:PORT/DB: sessions and global signals shared by several machines

    # Session (SessionConfig)
    resume_window: float = 300.0
    handshake_timeout: float = 5.0
    heartbeat_interval: float = 30.0
    read_timeout: float = 60.0  # no frame and no pong for this long: the socket is dropped, its session detaches
    write_timeout: float = 10.0  # output pending this long without draining: the socket is dropped
    idle_timeout: float = 300.0  # no traffic at all (events, pings, pongs) for this long: dropped; 0 = off
    max_pending_output_bytes: int = 4 * 1024 * 1024  # unsent output per socket beyond which it is dropped
    max_message_size: int = 64 * 1024
    max_handshake_path_bytes: int = 8 * 1024
    max_patch_history: int = 100
    max_event_queue: int = 256
    max_dispatch_queue: int = 2048
    max_detached: int = 10000
    eviction_policy: str = "lru"  # lru | oldest | random
    cleanup_interval: float = 30.0
    cold_after: float = 30.0  # a detached session idle this long is kept only as its sealed blob; 0 = never
    max_blob_age: float = 0.0  # reject persisted blobs older than this; 0 = no limit
    persist_interval: float = 30.0  # checkpoint changed sessions into the store this often; 0 = on disconnect only
    persistence_secret: str = ""  # hex; empty = random per supervisor run
    persistence_secret_previous: str = ""  # hex; still accepted on resume (rotation)
    dom_event_rate: float = 0.0  # events/s per session; 0 = unlimited
    dom_event_burst: int = 50
    resync_rate: float = 2.0
    resync_burst: int = 5
    # Storm budgets (StormBudgetConfig): a runaway loop stops with a StormError, reported like a handler's.
    max_effect_runs_per_tick: int = 1000  # effect runs in one event/dispatch; 0 = no limit
    max_task_starts_per_second: int = 100  # async handlers/effects/resources/intervals per session; 0 = no limit

    # Limits (ServerConfig / SessionLimits)
    max_sessions: int = 0  # 0 = unlimited
    max_sessions_per_ip: int = 100
    evict_on_ip_limit: bool = True
    max_concurrent_handshakes: int = 1024
    max_concurrent_handshakes_per_ip: int = 64
    max_memory_per_session: int = 3 * 1024 * 1024
    fd_reserve: int = 0  # open files a worker keeps beyond its live sockets; 0 = auto (1/16 of the limit, >= 16)

    # Memory
    memory_budget: int = 0  # 0 = cgroup memory.max or physical memory (the smallest of the three)
    memory_interval: float = 10.0  # RSS check period per worker; 0 = no checks
    memory_soft_ratio: float = 0.80  # of a worker's share: low pressure from here
    memory_hard_ratio: float = 0.90  # high pressure from here
    memory_critical_ratio: float = 0.95  # critical pressure from here
    max_worker_rss: int = 0  # owned memory (USS) above which a worker is recycled; 0 = its share of the hard limit
    memory_recycle_after: float = 60.0  # recycle a worker above max_worker_rss this long; 0 = never
    recycle_min_interval: float = 60.0  # storm guard: recycle one slot at most this often (doubling on relapse); 0 = off
    gc_cooldown: float = 30.0

    # Supervisor
    heartbeat_timeout: float = 30.0
    worker_heartbeat: float = 1.0
    crash_intensity: int = 5  # more than this many crashes of one slot ...
    crash_period: float = 30.0  # ... within this window stops the supervisor (exit 1)
    respawn_backoff_min: float = 0.1  # first respawn delay; doubles per crash
    respawn_backoff_max: float = 30.0
    abort_timeout: float = 5.0  # SIGABRT to a hung worker, then SIGKILL after this
    worker_boot_timeout: float = 30.0  # a HUP replacement must report ready within this
    bus_max_frame: int = 16 * 1024 * 1024  # larger bus frames drop the connection
    bus_max_backlog: int = 64 * 1024 * 1024  # hub output queued for one slow peer
    bus_timeout: float = 5.0  # default request timeout on the bus

    # HTTP surface (hosts, redirects, operational endpoints)
    allowed_hosts: list[str] = field(default_factory=list)  # Host allow-list ("example.com", "*.example.com:8443"); empty = any
    canonical_host: str = ""  # GET/HEAD naming another host are redirected here (301); empty = none
    allowed_redirect_hosts: list[str] = field(default_factory=list)  # hosts an app may redirect to; empty = relative only
    ops_networks: list[str] = field(default_factory=list)  # CIDRs besides loopback that see health details and metrics
    ops_token: str = ""  # "Authorization: Bearer <token>" sees health details and metrics from anywhere; empty = none

    # Observability (vango_mp.observability)
    status_page: bool = False  # serve /_vango/status (always on with dev); loopback or status_token only
    status_token: str = ""  # lets a non-loopback client see /_vango/status (Bearer, or ?token= once); empty = none
    log_format: str = "text"  # text | json (one object per line: worker, session short id, request id)
    access_log: bool = False  # one line per HTTP request (method, path, status, ms); WebSocket upgrades too

    def worker_count(self) -> int:
        """``workers``, where 0 means one per CPU this process may run on."""
        if self.workers > 0:
            return self.workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
