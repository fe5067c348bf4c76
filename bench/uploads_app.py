"""bench/uploads.py's app: the demo's login plus a page whose input takes up to 1 GiB of any type."""

from __future__ import annotations

from vango_mp.demo import account
from vango_mp.router import App
from vango_mp.uploads import UploadedFile, use_upload
from vango_mp.vdom import Node, component, h, use_signal


@component
def BenchUpload() -> Node:
    stored = use_signal(0)

    def got(files: list[UploadedFile]) -> None:
        stored.set(files[0].size)

    up = use_upload(got, max_files=1, max_file_size=1 << 30)
    done, total = up.progress.get()
    return h.main(h.input(type="file", id="file", **up.props()),
                  h.progress(value=str(done), max=str(total or 1)), h.p(f"stored {stored.get()}", id="stored"))


app = account.install(App({**account.PAGES, "/bench-upload": BenchUpload}, auth_func=account.current_user))
