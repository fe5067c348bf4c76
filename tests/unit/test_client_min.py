"""The served client: vango.js minified (rjsmin) and gzipped, the readable source kept in the repository.

The node tests (tests/unit/js) are run a second time against the minified
file, copied next to them in a scratch tree: what the browser gets behaves
as the source does. The Chromium tests (tests/browser) load the served,
minified file anyway.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from vango_mp import client_js, handlers

JS_TESTS = Path(__file__).parent / "js"
LIMIT = 15 * 1024  # bytes of vango.js on the wire (issue 13: "<= 15 KB as served")


def test_the_served_client_is_minified_and_gzipped_within_15_kb() -> None:
    source = client_js.SOURCE.read_text()
    served = handlers._CLIENT
    assert served.body == client_js.minify(source).encode()
    assert len(served.body) < 0.75 * len(source.encode())
    assert served.gzipped is not None and gzip.decompress(served.gzipped) == served.body
    assert len(served.gzipped) <= LIMIT, f"{len(served.gzipped)} B gzipped"
    # The repository keeps the readable file: comments and one statement a line.
    assert source.count("\n") > 300 and "// ---------------------------------------------------------------- constants" in source
    assert "// ----" not in served.body.decode()


def test_the_version_follows_the_served_bytes() -> None:
    client, version = client_js.build("const A = 1; // one\n")
    other, other_version = client_js.build("const A = 2; // one\n")
    same, same_version = client_js.build("const A = 1;   /* the same code */\n")
    assert client.body == client_js.BANNER.encode() + b"const A=1;\n"
    assert version != other_version and version == same_version == client.digest
    assert handlers.JS_VERSION == handlers._CLIENT.digest


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (tests/run.sh installs it)")
def test_the_node_tests_pass_against_the_minified_client(tmp_path: Path) -> None:
    tests = tmp_path / "tests" / "unit" / "js"
    shutil.copytree(JS_TESTS, tests, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    static = tmp_path / "vango_mp" / "static"
    static.mkdir(parents=True)
    (static / "vango.js").write_bytes(handlers._CLIENT.body)
    out = subprocess.run(["node", "--test", str(tests)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "# fail 0" in out.stdout and "# pass 0" not in out.stdout
