"""The browser client's protocol constants are vango_mp/protocol.py's, read from both sources.

The node tests (tests/unit/js) compare vango.js with fixtures.json, which is
generated from protocol.py but checked in: a change to protocol.py alone
(say, MOVE and REPLACE swapped) would leave them green. Here nothing is
stored: the constants are read out of vango.js (its source, and with Node
the module's own exports) and compared with protocol.py as imported now.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import vango_mp
from vango_mp import protocol

CLIENT = Path(vango_mp.__file__).parent / "static" / "vango.js"
JS_TESTS = Path(__file__).parent / "js"

# Every constant the client mirrors (vango.js exports them as PROTOCOL).
NAMES = [
    "VERSION", "FLAG_RAW", "FLAG_LZ4",
    "HELLO", "EVENT", "ACK", "RESYNC", "PING", "PONG",
    "WELCOME", "PATCHES", "FULL", "S_PING", "S_PONG",
    "SET_TEXT", "SET_ATTR", "REMOVE_ATTR", "INSERT", "REMOVE", "MOVE", "REPLACE",
    "NAVIGATE", "PREFETCH", "NAV", "NAV_PUSH", "NAV_REPLACE", "NAV_POP", "NAV_LOAD",
    "EVENT_DONE", "ERROR", "HOOK", "ISLAND", "CALLS",
]


def server_side() -> dict[str, Any]:
    return {
        "values": {n: getattr(protocol, n) for n in NAMES},
        "EVENT_NAMES": sorted(protocol.EVENT_NAMES),
        "Close": {c.name: int(c) for c in protocol.Close},
    }


def from_source(js: str) -> dict[str, Any]:
    """The constants as vango.js declares them (``const A = 1, B = 0x02;``, the Close map, EVENT_NAMES)."""
    values: dict[str, int] = {}
    for decl in re.findall(r"^const ([^;]*);", js, flags=re.M):
        for name, value in re.findall(r"\b([A-Z][A-Z0-9_]*)\s*=\s*(0x[0-9a-fA-F]+|\d+)\b", decl):
            values[name] = int(value, 0)
    close = re.search(r"^const Close = \{(.*?)\};", js, flags=re.M | re.S)
    events = re.search(r"^const EVENT_NAMES = \[(.*?)\];", js, flags=re.M | re.S)
    assert close and events, "vango.js no longer declares Close / EVENT_NAMES where this test looks"
    return {
        "values": {n: values.get(n) for n in NAMES},
        "EVENT_NAMES": sorted(re.findall(r"'([^']*)'", events.group(1))),
        "Close": {k: int(v) for k, v in re.findall(r"([A-Z_]+):\s*(\d+)", close.group(1))},
    }


def test_client_source_declares_the_server_constants() -> None:
    assert from_source(CLIENT.read_text()) == server_side()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (tests/run.sh installs it)")
def test_client_module_exports_the_server_constants() -> None:
    """What the loaded client uses: vango.js's own exports, through Node."""
    script = ("const P = require(process.argv[1]).PROTOCOL;"
              "process.stdout.write(JSON.stringify(P));")
    out = subprocess.run(["node", "-e", script, str(CLIENT)], capture_output=True, text=True, timeout=30, check=True)
    exported = json.loads(out.stdout)
    got = {
        "values": {n: exported.get(n) for n in NAMES},
        "EVENT_NAMES": sorted(exported["EVENT_NAMES"]),
        "Close": exported["Close"],
    }
    assert got == server_side()


def test_the_node_tests_fixture_is_current() -> None:
    """fixtures.json (what the node tests compare vango.js with) matches protocol.py: regenerate it when not."""
    sys.path.insert(0, str(JS_TESTS))
    try:
        import gen_fixtures
    finally:
        sys.path.remove(str(JS_TESTS))
    stored = json.loads((JS_TESTS / "fixtures.json").read_text())
    assert stored["protocol"] == gen_fixtures.constants() == server_side(), \
        "run: python3 tests/unit/js/gen_fixtures.py"
