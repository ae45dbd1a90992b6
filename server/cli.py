"""The ``borealis`` command: run and inspect a cluster on this machine.

    borealis up      [--data-dir DIR] [--port N] [--readers K] [--pgs P] [--password PW] [--detach]
                     [--ccm/--no-ccm] [--kek-file PATH]
    borealis down    [--data-dir DIR]
    borealis rekey   --kek-file PATH [--data-dir DIR]
    borealis status  [--data-dir DIR] [--json]
    borealis storage  stop|start NAME [--data-dir DIR]
    borealis instance stop|start NAME [--data-dir DIR]
    borealis instance add NAME [--tier 0-15] | remove NAME
    borealis failover [--target NAME]
    borealis endpoint create NAME --port P (--members a,b | --exclude c) [--type reader|any]
                                  [--policy round_robin|least_connections]
    borealis endpoint modify NAME [--port P] [--members ..|--exclude ..] [--type ..] [--policy ..]
    borealis endpoint delete NAME | list
    borealis autoscale set [--min N] [--max N] [--target-connections X | --target-cpu P]
                           [--scale-out-cooldown S] [--scale-in-cooldown S] [--tier T]
    borealis autoscale off | show [--json]

All process handling lives in ``server.launcher.Cluster``; this module only parses
arguments, prints, and turns ``LaunchError`` into a one-line message and exit code 1.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from endpoints import custom
from server.launcher import Cluster, LaunchError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Borealis: an Aurora-style PostgreSQL cluster.")
storage_app = typer.Typer(no_args_is_help=True, help="Stop or start one storage node.")
instance_app = typer.Typer(no_args_is_help=True, help="Stop, start, add or remove one instance.")
endpoint_app = typer.Typer(no_args_is_help=True, help="Custom endpoints.")
app.add_typer(storage_app, name="storage")
app.add_typer(instance_app, name="instance")
app.add_typer(endpoint_app, name="endpoint")
autoscale_app = typer.Typer(no_args_is_help=True, help="Replica auto-scaling policy (the cluster manager applies it).")
app.add_typer(autoscale_app, name="autoscale")

DataDir = typer.Option(Path("./borealis-data"), "--data-dir", "-D", help="Cluster directory.")


def _fail(msg: str) -> None:
    typer.echo(f"borealis: {msg}", err=True)
    raise typer.Exit(1)


def _cluster(data_dir: Path, must_exist: bool = True) -> Cluster:
    c = Cluster(data_dir)
    if must_exist and not c.exists():
        _fail(f"no cluster in {c.data_dir} (run `borealis up` first)")
    return c


@app.command()
def up(
    data_dir: Path = DataDir,
    port: Optional[int] = typer.Option(None, help="Writer endpoint port (reader = port+1). Default 5432."),
    readers: int = typer.Option(1, min=0, max=15, help="Reader instances (first run only)."),
    pgs: int = typer.Option(2, min=1, help="Protection groups (first run only)."),
    password: Optional[str] = typer.Option(None, envvar="BOREALIS_PASSWORD",
                                           help="Superuser password (cluster.json keeps only its SCRAM verifier)."),
    kek_file: Optional[Path] = typer.Option(
        None, "--kek-file",
        help="Key-encryption key for encryption at rest (first run only; hex or base64, 256 bits). "
             "Default: $BOREALIS_KEK, else ~/.config/borealis/kek (created if missing)."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Return once the cluster is up."),
    timeout: float = typer.Option(60.0, help="Seconds to wait for every part to accept connections."),
    ccm: Optional[bool] = typer.Option(None, "--ccm/--no-ccm",
                                       help="Cluster cache management: tier-0 readers keep the writer's hot set cached."),
) -> None:
    """Create the cluster on first use, then start every part that is not running."""
    c = _cluster(data_dir, must_exist=False)
    if not c.exists():
        try:
            c.create(port=5432 if port is None else port, readers=readers, pgs=pgs, password=password,
                     kek_file=kek_file)
        except LaunchError as e:
            _fail(str(e))
        typer.echo(f"created cluster in {c.data_dir}")
    else:
        conf = c.conf
        stored = next((e.port for e in conf.endpoints if e.name == "writer"), None)
        if port is not None and port != stored:
            typer.echo(f"borealis: warning: {c.data_dir} uses writer port {stored}; ignoring --port {port}", err=True)
        if kek_file is not None:
            typer.echo(f"borealis: warning: {c.data_dir} already has its data key; ignoring --kek-file", err=True)
        if password is not None and not conf.password_matches(password):
            with c.editing() as conf:
                conf.set_password(password)
    if ccm is not None:
        _set_ccm(c, ccm)
    try:
        started = c.start_missing(timeout)
    except LaunchError as e:
        _fail(str(e))
    if started:
        typer.echo(f"started {', '.join(started)}")
    else:
        typer.echo("every part was already running")
    typer.echo(f"writer: {c.dsn('writer')}")
    typer.echo(f"reader: {c.dsn('reader')}")
    if detach:
        return
    _foreground(c)


def _set_ccm(c: Cluster, on: bool) -> None:
    """Turn cluster cache management on or off; on, with no tier-0 reader, the first reader
    becomes tier 0 (CCM warms tier-0 readers, the first ones promoted on failover)."""
    with c.editing() as conf:
        conf.ccm = on
        readers = conf.readers()
        if on and readers and not any(r.tier == 0 for r in readers):
            readers[0].tier = 0
            typer.echo(f"{readers[0].name} is now tier 0")
    typer.echo(f"cluster cache management {'on' if on else 'off'}")


def _foreground(c: Cluster) -> None:
    """Stay up until Ctrl-C / SIGTERM / SIGHUP, then stop everything.  Parts that die are
    reported, not restarted (fault tests kill them on purpose; `up` again restarts them)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    typer.echo("running in the foreground; Ctrl-C stops the cluster")
    known = c.running()
    try:
        while True:
            time.sleep(1.0)
            now = c.running()
            for name in known.keys() - now.keys():
                typer.echo(f"{name} is not running (log: {c.log_path(name)})", err=True)
            known = now
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan parts
        typer.echo("\nstopping")
        stopped = c.stop_all()
        typer.echo(f"stopped {', '.join(stopped) or 'nothing'}")


@app.command()
def rekey(
    data_dir: Path = DataDir,
    kek_file: Path = typer.Option(..., "--kek-file", help="The new key-encryption key (hex or base64, 256 bits)."),
) -> None:
    """Wrap the volume's data key by a new key-encryption key (nothing is re-encrypted)."""
    c = _cluster(data_dir)
    try:
        c.rekey(kek_file)
    except LaunchError as e:
        _fail(str(e))
    typer.echo(f"the data key is now wrapped by {kek_file.expanduser().resolve()}")
    if os.environ.get("BOREALIS_KEK"):
        typer.echo("borealis: unset BOREALIS_KEK: it would take precedence over the new key file", err=True)


@app.command()
def down(data_dir: Path = DataDir) -> None:
    """Stop every part: endpoints, then instances, then storage (SIGTERM, then SIGKILL)."""
    c = _cluster(data_dir)
    stopped = c.stop_all()
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells)


def render(st: dict) -> str:
    out = ["INSTANCES", _table(
        [[i["name"] + ("*" if i.get("autoscaled") else ""), i["role"], i.get("tier"), f"{i['address']}:{i['port']}",
          i["pid"], i["state"], i["applied_lsn"], None if i["lag_ms"] is None else f"{i['lag_ms']:.1f}",
          i.get("connections")] for i in st["instances"]],
        ["name", "role", "tier", "address", "pid", "state", "applied_lsn", "lag_ms", "sessions"])]
    out += ["", "STORAGE NODES", _table(
        [[s["name"], s["az"], f"{s['address']}:{s['port']}", s["pid"], s["state"],
          " ".join(f"pg{k}={v}" for k, v in s["scl"].items()),
          " ".join(f"pg{k}={v}" for k, v in s.get("damaged", {}).items()) or None] for s in st["storage_nodes"]],
        ["name", "az", "address", "pid", "state", "scl", "damaged"])]
    out += ["", "ENDPOINTS", _table(
        [[e["name"], e["kind"], e["port"], e.get("policy"),
          " ".join(f"{m}({e['connections'].get(m, 0)})" for m in e["members"]) or "(none)",
          " ".join(f"{m}={n}" for m, n in e.get("routed", {}).items()) or None]
         for e in st["endpoints"]],
        ["name", "kind", "port", "policy", "members(relayed open)", "routed"])]
    v = st["volume"]
    out += ["", f"VOLUME  vcl={v['vcl']}  vdl={v['vdl']}  epoch={v['epoch']}"]
    pgs = v.get("protection_groups") or []
    if pgs:
        out += [f"PROTECTION GROUPS  {len(pgs)}  (limit {v.get('pg_size_limit')} bytes each)", _table(
            [[p["pg"], p["bytes"], p["pgcl"], " ".join(f"{n}={lsn}" for n, lsn in p["scl"].items())] for p in pgs],
            ["pg", "bytes", "pgcl", "scl"])]
    m = st.get("manager") or {}
    out += ["", f"MANAGER  {'running' if m.get('pid') else 'not running'}"
                f"  heartbeat_rtt_ms={m.get('rtt_ms')}"]
    for ev in m.get("events", [])[-5:]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ev.get("at", ev.get("time", 0))))
        what = f"{ev.get('instance')}" if ev.get("kind") in ("scale_out", "scale_in") \
            else f"{ev.get('from', ev.get('old'))} -> {ev.get('to', ev.get('new'))}"
        out.append(f"  {when}  {ev.get('kind')} {what}  ({ev.get('reason')})"
                   f"  {ev.get('seconds')} s  {'ok' if ev.get('ok') else 'FAILED: ' + str(ev.get('error'))}")
    out += ["", render_autoscale(st.get("autoscale") or {}), f"CCM  {'on' if st.get('ccm') else 'off'}"]
    return "\n".join(out)


def render_autoscale(a: dict) -> str:
    p = a.get("policy")
    if not p:
        return "AUTOSCALE  off"
    head = (f"AUTOSCALE  {'on' if p.get('enabled', True) else 'disabled'}  readers {p.get('min_readers')}.."
            f"{p.get('max_readers')}  target {p.get('metric')}={p.get('target')}  cooldowns out "
            f"{p.get('scale_out_cooldown')} s / in {p.get('scale_in_cooldown')} s  new tier {p.get('tier')}")
    now = a.get("now")
    if not now or "readers" not in now:
        return head + ("\n  (manager not running)" if now is None else f"\n  {now.get('error', '')}")
    loads = " ".join(f"{k}={v}" for k, v in now.get("loads", {}).items())
    return head + (f"\n  readers {now['readers']}  wanted {now['wanted']}  average {now['average']}  [{loads}]"
                   f"  -> {now['decision']}")


@app.command()
def status(
    data_dir: Path = DataDir,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (schema in README)."),
) -> None:
    """Show instances, storage nodes, endpoints and the volume's consistency points."""
    st = _cluster(data_dir).status()
    typer.echo(json.dumps(st, indent=2) if as_json else render(st))


def _one(data_dir: Path, name: str, kinds: tuple[str, ...], start: bool) -> None:
    c = _cluster(data_dir)
    try:
        part = c.part(name)
    except LaunchError as e:
        _fail(str(e))
    if part.kind not in kinds:
        _fail(f"{name} is a {part.kind}, not a {' or '.join(kinds)}")
    try:
        if start:
            done = c.start([name])
            typer.echo(f"started {name}" if done else f"{name} was already running")
        else:
            done = c.stop([name])
            typer.echo(f"stopped {name}" if done else f"{name} was not running")
    except LaunchError as e:
        _fail(str(e))


@storage_app.command("stop")
def storage_stop(name: str, data_dir: Path = DataDir) -> None:
    """Stop one storage node (SIGTERM)."""
    _one(data_dir, name, ("storage",), start=False)


@storage_app.command("start")
def storage_start(name: str, data_dir: Path = DataDir) -> None:
    """Start one storage node and wait until it accepts connections."""
    _one(data_dir, name, ("storage",), start=True)


@storage_app.command("replace")
def storage_replace(
    name: str,
    data_dir: Path = DataDir,
    new: str = typer.Option("", "--new", help="name of the new node (default: the next free sN)"),
    timeout: float = typer.Option(300.0, help="seconds for the new node to catch up"),
) -> None:
    """Re-replicate NAME's segments on a fresh node in the same AZ, then retire NAME.

    Writes continue throughout: while both are listed, the writer needs 4/6 of the old set
    and 4/6 of the new set (storage.membership, server.quorum)."""
    import asyncio
    import os
    import signal as _signal
    import time as _time

    from storage.membership import replace

    c = _cluster(data_dir)
    names = {s.name for s in c.conf.storage_nodes}
    if name not in names:
        _fail(f"no storage node named {name!r}")
    if not new:
        k = len(names) + 1
        while f"s{k}" in names:
            k += 1
        new = f"s{k}"
    old_pid = c.pid(name)

    def start(node: str) -> None:
        c.start([node])

    def stop(node: str) -> None:
        if old_pid is None:
            return
        try:
            os.kill(old_pid, _signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = _time.monotonic() + 10
        while _time.monotonic() < deadline:
            try:
                os.kill(old_pid, 0)
            except ProcessLookupError:
                break
            _time.sleep(0.1)
        else:
            os.kill(old_pid, _signal.SIGKILL)
        (c.run_dir / f"{node}.pid").unlink(missing_ok=True)

    try:
        entry = asyncio.run(replace(data_dir, name, new, start=start, stop=stop, timeout=timeout))
    except (TimeoutError, RuntimeError, KeyError, LaunchError) as e:
        _fail(str(e))
    typer.echo(f"replaced {name} by {new} ({entry['az']}, port {entry['port']})")


@instance_app.command("stop")
def instance_stop(name: str, data_dir: Path = DataDir) -> None:
    """Stop one instance (SIGTERM)."""
    _one(data_dir, name, ("writer", "reader"), start=False)


@instance_app.command("start")
def instance_start(name: str, data_dir: Path = DataDir) -> None:
    """Start one instance and wait until it accepts connections."""
    _one(data_dir, name, ("writer", "reader"), start=True)


@instance_app.command("add")
def instance_add(
    name: str,
    tier: int = typer.Option(1, min=0, max=15, help="Failover priority: lower tiers are promoted first."),
    data_dir: Path = DataDir,
) -> None:
    """Add a reader to the running cluster (own ports and instance endpoint) and start it."""
    c = _cluster(data_dir)
    try:
        inst = c.add_instance(name, tier)
    except LaunchError as e:
        _fail(str(e))
    ep = next(e for e in c.conf.endpoints if e.kind == "instance" and e.members == [name])
    typer.echo(f"added {inst.name} (reader, tier {inst.tier}) on port {inst.port}; "
               f"instance endpoint postgresql://postgres@{c.conf.host}:{ep.port}/postgres")


@instance_app.command("remove")
def instance_remove(name: str, data_dir: Path = DataDir) -> None:
    """Remove a reader: it leaves every endpoint, then its process is stopped."""
    c = _cluster(data_dir)
    try:
        c.remove_instance(name)
    except LaunchError as e:
        _fail(str(e))
    typer.echo(f"removed {name}")


@app.command()
def failover(
    target: Optional[str] = typer.Option(None, help="Reader to promote (default: lowest tier, most caught up)."),
    data_dir: Path = DataDir,
) -> None:
    """Planned switchover: stop the writer gracefully, promote a reader, restart the old
    writer as a reader.  No acknowledged commit is lost."""
    from server.manager import FailoverError, request_switchover

    c = _cluster(data_dir)
    try:
        ev = request_switchover(c, target)
    except FailoverError as e:
        _fail(str(e))
    if not ev.get("ok"):
        _fail(f"failover failed: {ev.get('error')}")
    typer.echo(f"writer is now {ev['to']} (was {ev['from']}); took {ev['seconds']} s")


def _names(csv: Optional[str]) -> Optional[list[str]]:
    return None if csv is None else [n.strip() for n in csv.split(",") if n.strip()]


def _edit_endpoints(data_dir: Path, fn: Any) -> Any:
    c = _cluster(data_dir)
    try:
        with c.editing() as conf:
            return fn(conf)
    except custom.EndpointError as e:
        _fail(str(e))


@endpoint_app.command("create")
def endpoint_create(
    name: str,
    port: int = typer.Option(..., help="Port the proxy listens on."),
    members: Optional[str] = typer.Option(None, help="Comma-separated instances."),
    exclude: Optional[str] = typer.Option(None, help="Every instance but these (new ones join)."),
    type: str = typer.Option("any", "--type", help="reader: only instances in the reader role; any."),
    policy: str = typer.Option("round_robin", help="round_robin | least_connections."),
    data_dir: Path = DataDir,
) -> None:
    """Create a custom endpoint; the proxy starts listening within a fraction of a second."""
    ep = _edit_endpoints(data_dir, lambda conf: custom.create(
        conf, name, port, _names(members), _names(exclude), type, policy))
    typer.echo(f"created endpoint {ep.name} on port {ep.port}")


@endpoint_app.command("modify")
def endpoint_modify(
    name: str,
    port: Optional[int] = typer.Option(None),
    members: Optional[str] = typer.Option(None),
    exclude: Optional[str] = typer.Option(None),
    type: Optional[str] = typer.Option(None, "--type"),
    policy: Optional[str] = typer.Option(None),
    data_dir: Path = DataDir,
) -> None:
    """Change an endpoint; connections it already relayed are kept."""
    ep = _edit_endpoints(data_dir, lambda conf: custom.modify(
        conf, name, port, _names(members), _names(exclude), type, policy))
    typer.echo(f"modified endpoint {ep.name}")


@endpoint_app.command("delete")
def endpoint_delete(name: str, data_dir: Path = DataDir) -> None:
    """Delete a custom endpoint; connections it already relayed are kept."""
    _edit_endpoints(data_dir, lambda conf: custom.delete(conf, name))
    typer.echo(f"deleted endpoint {name}")


@endpoint_app.command("list")
def endpoint_list(data_dir: Path = DataDir, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every endpoint with its members right now."""
    from endpoints.routing import members as ep_members

    conf = _cluster(data_dir).conf
    rows = [{"name": e.name, "kind": e.kind, "port": e.port, "type": e.type if e.kind == "custom" else None,
             "policy": e.policy, "members": [i.name for i in ep_members(conf, e)],
             "exclude": e.exclude} for e in conf.endpoints]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(_table([[r["name"], r["kind"], r["port"], r["type"], r["policy"], ",".join(r["members"]) or "(none)",
                        ",".join(r["exclude"]) or None] for r in rows],
                      ["name", "kind", "port", "type", "policy", "members", "exclude"]))


@autoscale_app.command("set")
def autoscale_set(
    min_readers: Optional[int] = typer.Option(None, "--min", help="Fewest readers (default 1)."),
    max_readers: Optional[int] = typer.Option(None, "--max", help="Most readers (default 15)."),
    target_connections: Optional[float] = typer.Option(None, help="Aim for this many sessions per reader."),
    target_cpu: Optional[float] = typer.Option(None, help="Aim for this average CPU percent per reader."),
    scale_out_cooldown: Optional[float] = typer.Option(None, help="Seconds between scale-outs (default 60)."),
    scale_in_cooldown: Optional[float] = typer.Option(None, help="Seconds after any scaling before a scale-in (default 300)."),
    tier: Optional[int] = typer.Option(None, help="Failover tier of the readers it adds (default 15)."),
    data_dir: Path = DataDir,
) -> None:
    """Turn auto-scaling on, or change the settings given (the others are kept)."""
    from server.autoscale import AutoscaleError, AutoscalePolicy

    if target_connections is not None and target_cpu is not None:
        _fail("give one of --target-connections and --target-cpu")
    c = _cluster(data_dir)
    try:
        with c.editing() as conf:
            d = dict(conf.autoscale or {})
            d["enabled"] = True
            if target_connections is not None:
                d["metric"], d["target"] = "connections", target_connections
            if target_cpu is not None:
                d["metric"], d["target"] = "cpu", target_cpu
            for key, val in (("min_readers", min_readers), ("max_readers", max_readers), ("tier", tier),
                             ("scale_out_cooldown", scale_out_cooldown), ("scale_in_cooldown", scale_in_cooldown)):
                if val is not None:
                    d[key] = val
            policy = AutoscalePolicy.from_dict(d)
            conf.autoscale = policy.to_dict()
    except AutoscaleError as e:
        _fail(str(e))
    if c.pid("manager") is None:
        typer.echo("borealis: warning: the cluster manager is not running; run `borealis up` to apply the policy",
                   err=True)
    typer.echo(f"autoscale on: {policy.min_readers}..{policy.max_readers} readers, target {policy.metric} "
               f"{policy.target:g} per reader, cooldowns {policy.scale_out_cooldown:g} s out / "
               f"{policy.scale_in_cooldown:g} s in")


@autoscale_app.command("off")
def autoscale_off(data_dir: Path = DataDir) -> None:
    """Stop auto-scaling; the readers it added stay (remove them with `instance remove`)."""
    c = _cluster(data_dir)
    with c.editing() as conf:
        if conf.autoscale:
            conf.autoscale = dict(conf.autoscale, enabled=False)
    typer.echo("autoscale off")


@autoscale_app.command("show")
def autoscale_show(data_dir: Path = DataDir, as_json: bool = typer.Option(False, "--json")) -> None:
    """The policy and the manager's last sample of the readers."""
    st = _cluster(data_dir).status()
    typer.echo(json.dumps(st["autoscale"], indent=2) if as_json else render_autoscale(st["autoscale"]))



def main() -> None:
    os.umask(0o077)  # cluster.json, logs, pid files: the owner's only
    app()


if __name__ == "__main__":
    main()

