"""Secrets on disk and encryption at rest, on a real cluster (docs/security.md).

One cluster started with a known password; a known secret string goes into a column (not
a key) by single-row INSERTs, a bulk INSERT ... SELECT (PUTS records) and UPDATEs.  Then,
after a storage node is stopped (its memtable flushed to SST files) and after the whole
cluster is stopped, no file anywhere in the data directory -- SST, WAL, MANIFEST, every
part's log, cluster.json, pid files, TLS files -- holds the secret or the password, and
every file is the owner's only (0600, directories 0700).  A storage node given another
key-encryption key, or another data key, refuses to start and says why; `borealis rekey`
wraps the data key by a new KEK; with the right keys the data reads back exactly.  An old cluster.json holding the clear-text password is converted.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from cluster import ClusterHandle, borealis_cli, fresh_kek_file, wait_for
from server.config import ClusterConf
from server.launcher import Cluster, LaunchError
from storage import atrest

SECRET = "colsecret-" + uuid.uuid4().hex  # a column value
SECRET2 = "updsecret-" + uuid.uuid4().hex  # what UPDATE writes
PW = "pwsecret-" + uuid.uuid4().hex  # the bootstrap superuser's password
BULK = 20_500  # above the 20,000 row writes that take the bulk (PUTS) path


def _dsn(c: ClusterHandle, endpoint: str = "writer") -> str:
    return c.launcher.dsn(endpoint).replace("postgres@", f"postgres:{quote(PW, safe='')}@", 1)


def _holding(root: Path, needles: list[bytes]) -> list[str]:
    """Every file under ``root`` that holds one of ``needles`` (name: which)."""
    found = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            found += [f"{p.relative_to(root)}: {n.decode()[:12]}..." for n in needles if n in data]
    return found


def _loose_modes(root: Path) -> list[str]:
    """Entries under ``root`` (and root) that group or others may use, or that are not
    0700 directories / 0600 regular files."""
    bad = []
    for p in [root, *root.rglob("*")]:
        st = os.lstat(p)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            ok = mode == 0o700
        elif stat.S_ISREG(st.st_mode):
            ok = mode == 0o600
        else:  # Unix sockets, symlinks: at least not open to others
            ok = mode & 0o077 == 0 or stat.S_ISLNK(st.st_mode)
        if not ok:
            bad.append(f"{p.relative_to(root) if p != root else '.'}: {oct(mode)}")
    return bad


def _rows(dsn: str) -> tuple:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*), sum(length(v)), min(v), max(v) FROM sec WHERE id <= 100").fetchone() + \
            conn.execute("SELECT count(*) FROM sec").fetchone()


def test_no_secret_on_disk_owner_only_modes_and_wrong_kek(make_cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    c = make_cluster(readers=1, password=PW)
    data = c.data_dir
    conf = json.loads((data / "cluster.json").read_text())
    assert "password" not in conf and conf["password_verifier"].startswith("SCRAM-SHA-256$")
    assert conf["encryption"]["wrapped_dek"] and not Path(conf["encryption"]["kek_file"]).is_relative_to(data)
    assert conf["encryption"]["from_creation"] is True  # storage refuses any unsealed value

    with psycopg.connect(_dsn(c), autocommit=True) as conn:
        conn.execute("CREATE TABLE sec (id int PRIMARY KEY, v text)")
        for i in range(1, 101):
            conn.execute("INSERT INTO sec VALUES (%s, %s)", [i, f"{SECRET}-{i}"])
        conn.execute(f"INSERT INTO sec SELECT g, '{SECRET}' || g FROM generate_series(101, {100 + BULK}) g")
        conn.execute(f"UPDATE sec SET v = '{SECRET2}-' || id WHERE id <= 50")
        conn.execute("DELETE FROM sec WHERE id > 100 AND id <= 110")
        # the bootstrap superuser is known by the verifier of cluster.json, not by a password
        assert conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'").fetchone() == \
            (conf["password_verifier"],)
    want = _rows(_dsn(c))
    assert (want[0], want[2], want[3], want[4]) == (100, f"{SECRET}-100", f"{SECRET2}-9", 100 + BULK - 10)
    wait_for(lambda: _rows(_dsn(c, "reader")) == want, 60, "the reader to see every row")  # via its own reads

    needles = [SECRET.encode(), SECRET2.encode(), PW.encode()]
    # one node stopped: its memtable is flushed into SST files, which hold nothing readable
    c.launcher.stop(["s1"])
    s1 = data / "storage" / "s1"
    assert any(p.suffix == ".sst" for p in s1.rglob("*")), sorted(p.name for p in s1.rglob("*"))
    assert _holding(s1, needles) == []
    c.start(["s1"])

    # the whole cluster stopped: nothing anywhere in the data directory
    c.launcher.stop_all()
    names = {p.name for p in data.rglob("*")}
    assert {"cluster.json", "CURRENT"} <= names and any(n.endswith(".log") for n in names)
    assert _holding(data, needles) == []
    assert _loose_modes(data) == []

    # a node given another KEK cannot unwrap the data key: it refuses to start, and says so
    monkeypatch.setenv(atrest.KEK_ENV, os.urandom(32).hex())
    with pytest.raises(LaunchError, match="s2 exited during start-up"):
        c.launcher.start(["s2"], timeout=60)
    assert "does not unwrap this volume's data key" in c.launcher.tail("s2")
    monkeypatch.delenv(atrest.KEK_ENV)
    # the right KEK but another data key in cluster.json: the node's store says it is not its key
    with c.launcher.editing() as edited:
        good = dict(edited.encryption)
        edited.encryption = {**good, "wrapped_dek": atrest.new_wrapped_dek(atrest.load_kek(good["kek_file"]))}
    with pytest.raises(LaunchError, match="s2 exited during start-up"):
        c.launcher.start(["s2"], timeout=60)
    assert "encrypted under another data key" in c.launcher.tail("s2")
    with c.launcher.editing() as edited:
        edited.encryption = good

    # a new KEK: the data key is rewrapped (nothing re-encrypted); the old KEK no longer opens it
    old_kek = atrest.load_kek(good["kek_file"])
    new_kek_file = fresh_kek_file(data.parent / "rotated")
    out = borealis_cli(data, "rekey", "--kek-file", str(new_kek_file))
    assert "wrapped by" in out
    rotated = ClusterConf.load(data).encryption
    assert rotated["kek_file"] == str(new_kek_file) and rotated["wrapped_dek"] != good["wrapped_dek"]
    with pytest.raises(atrest.WrongKek):
        atrest.unwrap_dek(old_kek, rotated["wrapped_dek"])
    assert atrest.unwrap_dek(atrest.load_kek(new_kek_file), rotated["wrapped_dek"]) == \
        atrest.unwrap_dek(old_kek, good["wrapped_dek"])

    # with the right KEK every value reads back exactly (versions and log from SST files)
    c.start(None)
    assert wait_for(lambda: _rows(_dsn(c)) == want, 60, "the writer to serve every row again")
    assert wait_for(lambda: _rows(_dsn(c, "reader")) == want, 60, "the reader to serve every row again")


def test_an_old_cluster_json_and_loose_modes_are_upgraded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What an older version left: the clear-text password, no data key, 0755 / 0644."""
    monkeypatch.delenv(atrest.KEK_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # never the user's own key
    c = Cluster(tmp_path / "old")
    c.create(port=None, readers=0, kek_file=fresh_kek_file(tmp_path / "old"))
    path = c.data_dir / "cluster.json"
    raw = json.loads(path.read_text())
    raw.pop("password_verifier")
    raw.pop("encryption")
    raw["password"] = "old-clear-text-pw"
    path.write_text(json.dumps(raw))
    (c.data_dir / "storage" / "s1").mkdir(parents=True)
    (c.data_dir / "storage" / "s1" / "000001.log").write_bytes(b"x")
    for p, mode in ((c.data_dir, 0o755), (c.data_dir / "storage", 0o755), (path, 0o644),
                    (c.data_dir / "storage" / "s1" / "000001.log", 0o644)):
        os.chmod(p, mode)
    assert ClusterConf.load(c.data_dir).password_matches("old-clear-text-pw")  # read as its verifier

    c._upgrade()  # what every start does first
    assert b"old-clear-text-pw" not in path.read_bytes()
    conf = ClusterConf.load(c.data_dir)
    assert conf.password_matches("old-clear-text-pw") and not conf.password_matches("other")
    assert atrest.unwrap_dek(atrest.load_kek(None), conf.encryption["wrapped_dek"])  # the default KEK, made now
    assert conf.encryption["from_creation"] is False  # its nodes may hold unsealed values
    assert (tmp_path / "config" / "borealis" / "kek").stat().st_mode & 0o777 == 0o600
    assert _loose_modes(c.data_dir) == []
