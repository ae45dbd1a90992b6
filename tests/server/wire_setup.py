"""What the pg-wire tests' password cluster is made with (tests/server/conftest.py ``hba_cluster``)."""

CLUSTER_PW = "clusterpw"  # the bootstrap superuser's (postgres) password
HBA = """
# comment line
hostssl  secure        all          127.0.0.1/32        scram-sha-256
host     secure        all          all                 reject
host     db            carol        127.0.0.1 255.255.255.255  md5
host     db            dave         ::1/128             trust
host     all           clear        127.0.0.1/32        password
host     all           md5user      127.0.0.1/32        md5
host     db,sameuser   all          127.0.0.0/8         scram-sha-256
"""
# role -> (password, password_encryption it is stored with)
HBA_ROLES = {
    "bob": ("bobpw", "scram-sha-256"), "carol": ("carolpw", "md5"), "dave": ("davepw", "scram-sha-256"),
    "zed": ("zedpw", "scram-sha-256"), "clear": ("clearpw", "scram-sha-256"),
    "md5user": ("md5pw", "scram-sha-256"),
}
