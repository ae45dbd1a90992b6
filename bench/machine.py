"""Facts about the machine and software a bench run ran on, for the report header."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from bench.systems import PG_BIN

REPO_ROOT = Path(__file__).resolve().parent.parent
LIBS = ("sqlglot", "msgspec", "uvloop", "rocksdict", "asyncpg")


def _cmd(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10, cwd=REPO_ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return 0.0


def describe() -> dict:
    libs = {}
    for name in LIBS:
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libs[name] = None
    dirty = _cmd(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "commit": _cmd(["git", "rev-parse", "--short", "HEAD"]) + ("+dirty" if dirty else ""),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "mem_gib": mem_total_gib(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "postgresql": _cmd([str(PG_BIN / "postgres"), "--version"]),
        "pgbench": _cmd(["pgbench", "--version"]),
        "libs": libs,
    }
