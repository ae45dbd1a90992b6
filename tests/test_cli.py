"""The `borealis` command end to end: up --detach (with --password and --kek-file), psql
through the endpoints, status --json, a clear error when a port is taken, and down leaving
no process behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cluster import env_without_pg, pid_alive
from server.launcher import Cluster, free_ports

BOREALIS = [sys.executable, "-m", "server.cli"]


def borealis(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*BOREALIS, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def psql(dsn: str, sql: str, password: str | None = None) -> subprocess.CompletedProcess:
    env = env_without_pg() | ({"PGPASSWORD": password} if password is not None else {})
    return subprocess.run(["psql", dsn, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, timeout=30, env=env)


@pytest.fixture
def data_dir(tmp_path: Path):
    d = tmp_path / "data"
    yield d
    if (d / "cluster.json").exists():
        Cluster(d).stop_all()


def test_up_status_down(data_dir: Path) -> None:
    port = free_ports(1)[0]
    while True:  # need port and port+1 both free
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                break
            except OSError:
                port = free_ports(1)[0]
    kek = data_dir.parent / "kek.hex"  # outside the data directory
    kek.write_text(os.urandom(32).hex() + "\n")
    pw = "cli-pw-" + os.urandom(8).hex()
    r = borealis("up", "--detach", "--data-dir", str(data_dir), "--port", str(port), "--kek-file", str(kek),
                 "--password", pw)
    assert r.returncode == 0, r.stdout + r.stderr
    conf_text = (data_dir / "cluster.json").read_text()
    assert json.loads(conf_text)["encryption"]["kek_file"] == str(kek) and pw not in conf_text
    writer = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    reader = f"postgresql://postgres@127.0.0.1:{port + 1}/postgres"
    assert writer in r.stdout and reader in r.stdout
    c = Cluster(data_dir)
    pids = c.running()
    assert set(pids) == {"s1", "s2", "s3", "s4", "s5", "s6", "i1", "i2", "endpoints", "manager"}

    out = psql(writer, "select 40 + 2", pw)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"
    out = psql(reader, "select 1", pw)
    assert out.returncode == 0, out.stderr
    assert psql(writer, "select 1", "wrong").returncode != 0

    # A second `up` starts nothing and keeps the ports (and the data key: --kek-file is ignored).
    r = borealis("up", "--detach", "--data-dir", str(data_dir), "--kek-file", str(kek) + ".other", "--password", pw)
    assert r.returncode == 0 and "already running" in r.stdout
    assert "ignoring --kek-file" in r.stderr
    assert (data_dir / "cluster.json").read_text() == conf_text  # same password: nothing rewritten
    assert c.running() == pids

    r = borealis("status", "--json", "--data-dir", str(data_dir))
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert set(st) == {"instances", "storage_nodes", "endpoints", "volume", "manager", "autoscale", "ccm"}
    assert st["autoscale"]["policy"] is None and st["ccm"] is False
    assert {i["name"]: i["role"] for i in st["instances"]} == {"i1": "writer", "i2": "reader"}
    for i in st["instances"]:
        assert {"name", "role", "address", "port", "pid", "state", "applied_lsn", "lag_ms"} <= set(i)
        assert i["state"] != "down" and i["pid"] == pids[i["name"]]
    assert [s["az"] for s in st["storage_nodes"]] == ["az1", "az1", "az2", "az2", "az3", "az3"]
    for s in st["storage_nodes"]:
        assert {"name", "az", "address", "port", "pid", "state", "scl"} <= set(s)
        assert s["state"] == "up" and set(s["scl"]) <= {"0", "1"}
    eps = {e["name"]: e for e in st["endpoints"]}
    assert eps["writer"]["port"] == port and eps["writer"]["members"] == ["i1"]
    assert eps["reader"]["port"] == port + 1 and eps["reader"]["members"] == ["i2"]
    assert set(st["volume"]) == {"vcl", "vdl", "epoch", "pg_size_limit", "protection_groups"}
    assert isinstance(st["volume"]["vdl"], int)
    assert st["volume"]["pg_size_limit"] == 10 << 30  # the default
    pgs = st["volume"]["protection_groups"]
    assert [p["pg"] for p in pgs] == [0, 1] and all(isinstance(p["bytes"], int) for p in pgs)
    assert all(set(p["scl"]) == {"s1", "s2", "s3", "s4", "s5", "s6"} and p["pgcl"] is not None for p in pgs)

    # A killed storage node is reported down and `storage start` brings it back.
    c.kill("s3")
    st = json.loads(borealis("status", "--json", "--data-dir", str(data_dir)).stdout)
    assert [s["state"] for s in st["storage_nodes"]][2] == "down"
    r = borealis("storage", "start", "s3", "--data-dir", str(data_dir))
    assert r.returncode == 0, r.stderr
    assert c.pid("s3") is not None and c.pid("s3") != pids["s3"]
    pids = c.running()

    r = borealis("down", "--data-dir", str(data_dir))
    assert r.returncode == 0, r.stderr
    assert not [n for n, p in pids.items() if pid_alive(p)]
    assert not list((data_dir / "run").glob("*.pid"))


def test_up_with_port_taken(data_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = borealis("up", "--detach", "--data-dir", str(data_dir), "--port", str(port))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr + r.stdout
    err = r.stderr.strip().splitlines()
    assert err == [f"borealis: port {port} (writer endpoint) is already in use by another process"]
    assert not Cluster(data_dir).running()  # nothing was left behind


def test_commands_on_missing_cluster(tmp_path: Path) -> None:
    r = borealis("status", "--data-dir", str(tmp_path / "nothing"))
    assert r.returncode == 1 and "no cluster" in r.stderr and "Traceback" not in r.stderr


def test_fixture_cluster_serves_queries(cluster) -> None:
    out = psql(cluster.writer_dsn, "select 1")
    assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr
    assert set(cluster.launcher.running()) >= {"s1", "s6", "i1", "i2", "endpoints"}


def test_make_cluster_kill_and_restart(make_cluster) -> None:
    c = make_cluster(readers=0)
    assert "i2" not in c.launcher.running()
    old = c.kill("s2")
    assert old is not None and not pid_alive(old)
    assert c.launcher.pid("s2") is None
    assert c.start() == ["s2"]  # only the dead part comes back
    assert c.launcher.pid("s2") not in (None, old)
    st = c.status()
    assert [s["state"] for s in st["storage_nodes"]] == ["up"] * 6
    eps = {e["name"]: e["members"] for e in st["endpoints"] if e["kind"] in ("writer", "reader")}
    assert eps == {"writer": ["i1"], "reader": ["i1"]}  # no reader: the writer serves it
