"""``make bench``: the same workloads on a scratch PostgreSQL 15 and a scratch Borealis cluster.

    python -m bench [--quick] [--duration S] [--scale N] [--only a,b] [--systems postgresql,borealis]

Modules, one job each:

    machine.py    what the run ran on (cores, CPU, Python, PostgreSQL, library versions, commit)
    systems.py    ScratchPostgres (initdb + postgres as an unprivileged user) and ScratchBorealis
                  (server.launcher.Cluster in a temp dir); both expose ``dsn`` and ``pids()``
    pgbench.py    pgbench init (pgbench -i, else -i -I dtGvp) and runs
    workloads.py  the asyncpg workloads: INSERT latency, COPY, analytic join, replica lag, RSS
    growth.py     n, 2n, 4n, 8n rows of INSERT ... SELECT, CREATE INDEX, UPDATE/DELETE, a join,
                  ORDER BY ... LIMIT, a full scan: time ratio per doubling (``--only growth``)
    report.py     the markdown table and the JSON file under bench/results/
    runner.py     the order of things; every workload failure is caught and reported
    commit_cpu.py CPU per pgbench -N transaction of the writer and the storage nodes
                  (``python -m bench.commit_cpu``; not part of ``make bench``)

Nothing here changes how the systems are configured: PostgreSQL runs with its defaults
(fsync on), Borealis with the launcher's defaults.
"""
