"""Where the writer's time goes: ``python -m bench.profile [--seconds S] [--scale N]``.

Starts a scratch cluster (manager stopped so a slow writer is not failed over), loads the
pgbench tables, then for each of ``pgbench -S`` and ``pgbench -N`` (8 clients, prepared)
samples the writer instance with py-spy (``py-spy record --format raw``: collapsed stacks,
``frame;frame;... count`` per line, a frame being ``function (file:line)``) and prints the
functions with the most samples on top of the stack (self) and anywhere in it (inclusive).

py-spy is a profiling tool only, not a project dependency: ``.venv/bin/pip install py-spy``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import pgbench
from bench.systems import ScratchBorealis

_FRAME = re.compile(r"^(.*?) \((.*?)(?::\d+)?\)$")


def _name(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``; the line is dropped so one
    function's samples add up."""
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group(2)
    short = "/".join(Path(path).parts[-2:]) if "site-packages" not in path and "python3" not in path else Path(path).name
    return f"{m.group(1)} ({short})"


def summarize(raw: str, top: int = 25) -> dict:
    self_c: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_name(f) for f in stack.split(";") if f]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if frames:
            self_c[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    pct = lambda c: [(k, round(100 * v / max(total, 1), 1)) for k, v in c.most_common(top)]  # noqa: E731
    return {"samples": total, "self": pct(self_c), "inclusive": pct(incl)}


def record(pid: int, seconds: float, out: Path, rate: int) -> str:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    subprocess.run([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", str(rate), "-f", "raw",
                    "-o", str(out), "--nonblocking"], check=True, capture_output=True, timeout=seconds + 60)
    return out.read_text()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile")
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    with ScratchBorealis(manager=False) as b:
        print(f"init: {asyncio.run(pgbench.init(b.dsn, a.scale))['method']}", file=sys.stderr)
        for script in ("select", "update"):
            pid = b.writer_pid()
            load = pgbench.start_background(b.dsn, script, 8, a.seconds + 2)
            raw = record(pid, a.seconds, tmp / f"{script}.txt", a.rate)
            out, err = load.communicate(timeout=a.seconds + 60)
            tps = pgbench._TPS.search(out)
            s = summarize(raw, a.top)
            print(f"\n## pgbench {pgbench.SCRIPTS[script][0]} (8 clients, prepared): "
                  f"{tps.group(1) if tps else 'failed: ' + pgbench._tail(err)} tps, {s['samples']} samples")
            for kind in ("self", "inclusive"):
                print(f"\n{kind}:")
                for name, p in s[kind]:
                    print(f"  {p:5.1f}%  {name}")
    print(f"\nraw stacks under {tmp}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
