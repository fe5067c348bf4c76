"""The README's commands and examples run as printed."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import ROOT, start_server
from vango_mp.testing import TestClient

pytestmark = pytest.mark.timeout(60)
DEBIAN_PYTHON = Path("/usr/bin/python3")


def readme_fence(lang: str, marker: str) -> str:
    """The README's first ```lang fenced block that contains ``marker``."""
    text = (ROOT / "README.md").read_text()
    for block in re.findall(rf"```{lang}\n(.*?)```", text, re.S):
        if marker in block:
            return block
    raise AssertionError(f"no README {lang} block containing {marker!r}")


def test_first_component_example(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(readme_fence("python", "# myapp.py"))
    srv = start_server("--workers", "1", "--app", "myapp:app", env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    try:
        async def go() -> None:
            async with TestClient(srv.url) as client:
                page = await client.open("/")
                assert page.text("h1") == "Hello, world!"
                await page.click("button")
                await page.click("button")
                assert page.text("#clicks") == "Clicked 2 times"
                bob = await client.open("/hello/bob")
                assert bob.text("h1") == "Hello, bob!"
            # The README's own test-client example, against the same app.
            namespace: dict[str, Any] = {}
            example = readme_fence("python", "from vango_mp.testing import TestClient")
            exec(compile(example, "README", "exec"), namespace)
            await namespace["test_greeter"](srv.url)

        asyncio.run(go())
    finally:
        srv.stop()


def test_several_machines_example(tmp_path: Path) -> None:
    """The "Several machines" config loads and validates as printed (with a secret pasted in); the balancer
    snippet has no stickiness and passes WebSockets through."""
    import secrets

    from supervisor.config import ConfigError, load_settings

    toml = readme_fence("toml", "store_url")
    config = tmp_path / "vango-mp.toml"
    config.write_text(toml.replace("PASTE-64-HEX-DIGITS", secrets.token_hex(32)))
    settings, sources = load_settings(env={}, config_file=str(config))
    assert settings.store_url == "redis://10.0.0.5:6379/0" and str(config) in sources["store_url"]
    config.write_text(toml.replace('persistence_secret = "PASTE-64-HEX-DIGITS"', ""))
    with pytest.raises(ConfigError, match="store_url.*persistence_secret"):
        load_settings(env={}, config_file=str(config))  # a cluster without a shared secret does not start
    nginx = readme_fence("nginx", "upstream")
    assert "Upgrade $http_upgrade" in nginx and not re.search(r"\b(ip_hash|sticky|hash)\b", nginx)


def readme_sh_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        if marker in block:
            return block.strip()
    raise AssertionError(f"no README sh block containing {marker!r}")


@pytest.mark.timeout(900)
@pytest.mark.skipif(not DEBIAN_PYTHON.exists(), reason="needs the distribution's /usr/bin/python3")
def test_run_command_from_a_clean_clone_with_the_system_python(tmp_path: Path) -> None:
    """"Run it" on a Debian/Ubuntu python3 that refuses system-wide pip installs serves the demo."""
    path = f"/usr/bin:/bin:{os.environ.get('PATH', '')}"
    refused = subprocess.run([str(DEBIAN_PYTHON), "-m", "pip", "install", "vango-mp-not-a-package"],
                             capture_output=True, text=True, env={**os.environ, "PATH": path})
    if "externally-managed-environment" not in refused.stdout + refused.stderr:
        pytest.skip("this python3 does not refuse system-wide installs: not the case under test")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    command = readme_sh_block("vango-mp")  # the first sh block of "Run it"
    assert command.startswith("python3 -m venv"), command
    srv = start_server(command=["bash", "-c", command, "readme"], cwd=clone, timeout=800, env={
        "PATH": path, "PYTHONPATH": "", "VIRTUAL_ENV": "", "VANGO_BIND": "127.0.0.1:0", "VANGO_WORKERS": "1"})
    try:
        for proc in psutil.Process(srv.pid).children(recursive=True):
            if proc.name().startswith("vango-mp") or "vango-mp" in " ".join(proc.cmdline()[:2]):
                assert proc.cmdline()[0].startswith(str(DEBIAN_PYTHON.parent)) or \
                    str(clone / ".venv") in " ".join(proc.cmdline()), proc.cmdline()
        status, headers, body = srv.get("/counter")
        assert status == 200 and b'id="count"' in body and headers["X-Vango-Worker"] == "0"

        async def click() -> None:
            async with TestClient(srv.url) as client:
                page = await client.open("/counter")
                await page.click("#inc")
                assert page.text("#count") == "Count: 1"

        asyncio.run(click())
    finally:
        _stop_tree(srv)


def _stop_tree(srv: Any) -> None:
    """bash does not pass SIGTERM on: stop the supervisor it started, then bash."""
    try:
        kids = psutil.Process(srv.pid).children()
    except psutil.NoSuchProcess:
        kids = []
    for kid in kids:
        kid.terminate()
    psutil.wait_procs(kids, timeout=20)
    srv.stop()


def test_systemd_steps_keep_the_secret_private_and_the_unit_consistent() -> None:
    """The unit's binary, working directory, secret file and docs are the ones the README's steps install."""
    steps = readme_sh_block("useradd --system")
    unit = (ROOT / "config" / "vango-mp.service").read_text()
    directives = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    venv_bin = directives["ExecStart"].split()[0]
    assert venv_bin == "/opt/vango-mp/bin/vango-mp" and "python3 -m venv /opt/vango-mp" in steps
    assert "pip install --prefix" not in steps and " -m pip install" not in steps  # never the system pip
    assert directives["WorkingDirectory"] in steps
    secret_file = directives["EnvironmentFile"].lstrip("-")
    assert re.search(rf"chown root:vango-mp {secret_file} && chmod 0640 {secret_file}", steps)
    assert "umask 077" in steps  # never world-readable, not even for a moment
    toml = (ROOT / "config" / "vango-mp.toml").read_text()
    assert re.search(r'^persistence_secret = ""', toml, re.M)  # the shipped TOML holds no secret
    docs = re.findall(r"file:///usr/share/doc/vango-mp/(\S+)", directives["Documentation"])
    installed = re.search(r"install -D -m 0644 -t /usr/share/doc/vango-mp (.*?)\s+#", steps)
    assert docs and installed
    for name in docs:
        source = next(p for p in installed.group(1).split() if Path(p).name == name)
        assert (ROOT / source).is_file(), source
