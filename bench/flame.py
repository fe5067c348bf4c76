"""Collapsed stacks (py-spy ``--format raw``) -> a flame graph SVG, with no tools outside Python.

    python bench/flame.py bench/results/x-profile.txt [-o x.svg] [--min-pct 0.2]

One py-spy recording gives both the figures bench/load.py summarises and the
picture (two py-spy processes on one PID step on each other).
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

ROW, WIDTH, FONT = 16, 1600, 11


def samples(text: str) -> Iterator[tuple[list[str], int]]:
    """Each line of py-spy's collapsed stacks (``outer;...;inner COUNT``): its frames, outermost first, and count."""
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def short_frame(frame: str) -> str:
    """``fn (/long/path/file.py:12)`` -> ``fn (file.py:12)``."""
    return re.sub(r" \((.*/)?([^/]*)\)$", r" (\2)", frame)


def tree(text: str) -> tuple[dict, int]:
    """Nested {frame: [count, children]} of the samples, and the total."""
    root: dict = {}
    total = 0
    for stack, n in samples(text):
        total += n
        node = root
        for frame in map(short_frame, stack):
            entry = node.setdefault(frame, [0, {}])
            entry[0] += n
            node = entry[1]
    return root, total


def svg(text: str, title: str, min_pct: float = 0.2) -> str:
    root, total = tree(text)
    boxes: list[str] = []
    depth_max = 0

    def walk(node: dict, x: float, depth: int) -> None:
        nonlocal depth_max
        for frame, (count, children) in sorted(node.items()):
            w = count / total * WIDTH
            if 100 * count / total >= min_pct:
                depth_max = max(depth_max, depth)
                hue = zlib.crc32(frame.split(" (")[0].encode()) % 60
                label = html.escape(frame)
                chars = int(w / (FONT * 0.6))
                shown = html.escape(frame[:chars - 2] + "..") if len(frame) > chars else label
                boxes.append(
                    f'<g><title>{label} ({count} samples, {100 * count / total:.1f}%)</title>'
                    f'<rect x="{x:.1f}" y="{{y{depth}}}" width="{max(w - 0.5, 0.1):.1f}" height="{ROW - 1}" '
                    f'fill="hsl({hue + 10},85%,60%)"/>'
                    + (f'<text x="{x + 3:.1f}" y="{{t{depth}}}">{shown}</text>' if chars > 3 else "") + "</g>")
                walk(children, x, depth + 1)
            x += w

    walk(root, 0.0, 0)
    height = (depth_max + 3) * ROW
    body = "\n".join(boxes)
    for depth in range(depth_max + 1):  # root at the bottom
        y = height - (depth + 1) * ROW
        body = body.replace(f"{{y{depth}}}", str(y)).replace(f"{{t{depth}}}", str(y + ROW - 4))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'font-family="monospace" font-size="{FONT}"><text x="4" y="{ROW - 4}">{html.escape(title)}: '
            f'{total} samples (hover for names)</text>\n{body}\n</svg>\n')


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stacks")
    p.add_argument("-o", "--out")
    p.add_argument("--min-pct", type=float, default=0.2, help="hide frames under this share of the samples")
    args = p.parse_args(argv)
    src = Path(args.stacks)
    out = Path(args.out) if args.out else src.with_suffix(".svg")
    out.write_text(svg(src.read_text(), src.name, args.min_pct))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
