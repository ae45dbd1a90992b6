"""The catalog: table and sequence definitions, stored as rows of table 0.

Key layout of table 0 (values are tuples, see ``TableDef.to_row``)::

    b"v"           -> (version, next_table_id)   catalog version row; every DDL locks and
                                                 rewrites it (DDL is serialised and
                                                 readers notice changes by its LSN)
    b"t:" + name   -> TableDef row               relations and sequences of database "postgres"
                                                 share one namespace
    b"t:" + db + b"\0" + name -> TableDef row    ... and of any other database ``db``: each
                                                 database has its relations of its own, as in
                                                 PostgreSQL (roles are the cluster's)
    b"d:" + name   -> DatabaseDef row            databases made by CREATE DATABASE, and the
                                                 built-in ones once ALTER DATABASE changed them
                                                 (rows of before oids were kept: (name,))
    b"r:" + name   -> RoleDef row                roles (CREATE ROLE / USER); a stored row of
                                                 the bootstrap superuser overrides the built-in
    b"m:" + roleid + member (2 x 4 bytes)        role memberships (GRANT role TO role)
                   -> (roleid, member, grantor, admin_option)
    b"n:" + db + b"\0" + schema -> (db, schema, owner, acl)   a schema's ACL once GRANT/REVOKE
                                                 changed it (engine.privileges)
    b"A:" + role + objtype + db + b"\0" + schema -> (role, db, schema, objtype, acl)
                                                 ALTER DEFAULT PRIVILEGES (pg_default_acl;
                                                 schema "" for the role's global entry)

Table 1 holds sequence state: ``rowid_key(seq_id) -> (last_value, is_called)``.
Table ids (= pg oids of relations) start at ``FIRST_TABLE_ID``; role oids come from the
same counter.  The bootstrap superuser (oid 10, ``postgres``) and PostgreSQL 15's predefined
``pg_*`` roles exist without rows (``BUILTIN_ROLES``).
"""

from __future__ import annotations

import datetime as _dt
import struct
from dataclasses import dataclass, field
from typing import Any, Iterable

from engine import types as T

CATALOG_TABLE = 0
SEQUENCE_TABLE = 1
FIRST_TABLE_ID = 16384
VERSION_KEY = b"v"


DEFAULT_DATABASE = "postgres"


def table_key(name: str, database: str = DEFAULT_DATABASE) -> bytes:
    if database == DEFAULT_DATABASE:
        return b"t:" + name.encode()
    return b"t:" + database.encode() + b"\0" + name.encode()


def database_key(name: str) -> bytes:
    return b"d:" + name.encode()


def role_key(name: str) -> bytes:
    return b"r:" + name.encode()


def member_key(roleid: int, member: int) -> bytes:
    return b"m:" + struct.pack(">II", roleid, member)


def schema_key(database: str, schema: str) -> bytes:
    return b"n:" + database.encode() + b"\0" + schema.encode()


def default_acl_key(role: int, database: str, schema: str, objtype: str) -> bytes:
    return b"A:" + struct.pack(">I", role) + objtype.encode() + database.encode() + b"\0" + schema.encode()


BOOTSTRAP_SUPERUSER = 10
BOOTSTRAP_NAME = "postgres"
BUILTIN_DATABASE_OIDS = {"template1": 1, "template0": 4, "postgres": 5}  # as initdb numbers them


@dataclass(frozen=True)
class DatabaseDef:
    """One database (a pg_database row, plus its ALTER DATABASE ... SET defaults as
    "name=value", applied to new sessions of the database)."""

    name: str
    oid: int
    owner: int = BOOTSTRAP_SUPERUSER
    config: tuple[str, ...] | None = None
    acl: tuple | None = None  # datacl items (engine.privileges); None: the default

    def to_row(self) -> tuple:
        return (self.name, self.oid, self.owner, list(self.config) if self.config is not None else None,
                [list(a) for a in self.acl] if self.acl is not None else None)

    @classmethod
    def from_row(cls, row: tuple) -> "DatabaseDef | None":
        """None for a row of before oids were kept (the oid is then made up by name order)."""
        if len(row) < 3:
            return None
        config = row[3] if len(row) > 3 else None
        acl = row[4] if len(row) > 4 else None
        return cls(row[0], row[1], row[2], tuple(config) if config is not None else None,
                   tuple(tuple(a) for a in acl) if acl is not None else None)


@dataclass(frozen=True)
class RoleDef:
    """One role (a pg_authid row).  ``password`` is a stored verifier (SCRAM or md5 text),
    never a clear-text password; ``stored`` is False for a built-in role without a row."""

    oid: int
    name: str
    superuser: bool = False
    inherit: bool = True
    createrole: bool = False
    createdb: bool = False
    canlogin: bool = False
    replication: bool = False
    bypassrls: bool = False
    connlimit: int = -1
    password: str | None = field(default=None, repr=False)
    valid_until: _dt.datetime | None = None
    config: tuple[str, ...] | None = None  # ALTER ROLE ... SET name = value, as "name=value"
    stored: bool = field(default=True, compare=False)

    def to_row(self) -> tuple:
        return (self.oid, self.name, self.superuser, self.inherit, self.createrole, self.createdb, self.canlogin,
                self.replication, self.bypassrls, self.connlimit, self.password, self.valid_until,
                list(self.config) if self.config is not None else None)

    @classmethod
    def from_row(cls, row: tuple) -> "RoleDef":
        r = list(row) + [None] * (13 - len(row))
        return cls(r[0], r[1], bool(r[2]), bool(r[3]), bool(r[4]), bool(r[5]), bool(r[6]), bool(r[7]),
                   bool(r[8]), int(r[9]), r[10], r[11], tuple(r[12]) if r[12] is not None else None)


def _builtin_roles() -> dict[int, RoleDef]:
    su = RoleDef(BOOTSTRAP_SUPERUSER, BOOTSTRAP_NAME, superuser=True, createrole=True, createdb=True,
                 canlogin=True, replication=True, bypassrls=True, stored=False)
    predefined = {3373: "pg_monitor", 3374: "pg_read_all_settings", 3375: "pg_read_all_stats",
                  3377: "pg_stat_scan_tables", 4200: "pg_signal_backend", 4544: "pg_checkpoint",
                  4569: "pg_read_server_files", 4570: "pg_write_server_files", 4571: "pg_execute_server_program",
                  6171: "pg_database_owner", 6181: "pg_read_all_data", 6182: "pg_write_all_data"}
    out = {su.oid: su}
    for oid, name in predefined.items():
        out[oid] = RoleDef(oid, name, stored=False)
    return out


BUILTIN_ROLES = _builtin_roles()
# pg_monitor is a member of these three, as in a fresh PostgreSQL 15 cluster (roleid, member, grantor, admin)
BUILTIN_MEMBERS = ((3374, 3373, BOOTSTRAP_SUPERUSER, False), (3375, 3373, BOOTSTRAP_SUPERUSER, False),
                   (3377, 3373, BOOTSTRAP_SUPERUSER, False))


@dataclass
class ColumnDef:
    name: str
    type_oid: int
    typmod: int = -1
    not_null: bool = False
    default: str | None = None  # SQL text of the default expression
    # ALTER TABLE ... ADD COLUMN is instant: rows stored before it are shorter than the
    # column list; readers pad them with ``missing`` (the default evaluated at ADD time).
    missing: Any = None
    instant: bool = False
    # an identity column: "a" GENERATED ALWAYS, "d" BY DEFAULT ("" none); its default is
    # nextval of the sequence it owns
    identity: str = ""

    def to_row(self) -> list:
        row = [self.name, self.type_oid, self.typmod, self.not_null, self.default]
        if self.instant or self.identity:
            row += [self.missing, self.instant]
        if self.identity:
            row.append(self.identity)
        return row


@dataclass
class SequenceDef:
    start: int = 1
    increment: int = 1
    min_value: int = 1
    max_value: int = 2**63 - 1
    cycle: bool = False


INDEX_COMMENT = "\x00index:"  # TableDef.comments key prefix of an index's comment


@dataclass
class TableDef:
    table_id: int
    name: str
    kind: str = "r"  # 'r' table, 'S' sequence
    columns: list[ColumnDef] = field(default_factory=list)
    pk: list[int] = field(default_factory=list)  # column positions of the primary key
    uniques: list[tuple[str, list[int]]] = field(default_factory=list)  # (constraint, columns)
    seq: SequenceDef | None = None
    owned_seqs: list[str] = field(default_factory=list)  # serial sequences dropped with the table
    checks: list[tuple[str, str]] = field(default_factory=list)  # (constraint, SQL text of the predicate)
    fkeys: list[list] = field(default_factory=list)  # [name, cols, ref table, ref cols] (recorded, not enforced)
    view_sql: str | None = None  # kind 'v': the defining query
    indexes: list[list] = field(default_factory=list)  # [name, column positions, unique]
    # COMMENT ON: "" -> the relation's comment, a column name -> that column's, INDEX_COMMENT + name -> an index's
    comments: dict[str, str] = field(default_factory=dict)
    database: str = DEFAULT_DATABASE  # the database the relation belongs to
    owner: int = BOOTSTRAP_SUPERUSER  # the owning role's oid (rows of before owners: the bootstrap superuser)
    # the relation's ACL (pg_class.relacl) as [grantee, grantor, privileges, grant options]
    # items (grantee 0 = PUBLIC, privileges as aclitem letters); None: the default for its kind
    acl: list[list] | None = None
    col_acls: dict[str, list[list]] = field(default_factory=dict)  # column name -> ACL (pg_attribute.attacl)
    rls: str = ""  # row-level security: "e" enabled, "f" forced (on the owner too), both, or neither
    # CREATE POLICY: [name, permissive, cmd ("*" r a w d), role oids (0 = PUBLIC), USING sql, WITH CHECK sql]
    policies: list[list] = field(default_factory=list)
    invoker: bool = False  # a view WITH (security_invoker): read with the caller's privileges, not its owner's
    # engine-private caches (not stored): compiled defaults, column index
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def pkey_name(self) -> str:
        return f"{self.name}_pkey"

    def column_index(self, name: str) -> int | None:
        idx = self.cache.get("colidx")
        if idx is None:
            idx = self.cache["colidx"] = {c.name: i for i, c in enumerate(self.columns)}
        return idx.get(name)

    def to_row(self) -> tuple:
        seq = None
        if self.seq is not None:
            s = self.seq
            seq = [s.start, s.increment, s.min_value, s.max_value, s.cycle]
        return (
            self.table_id, self.name, self.kind, [c.to_row() for c in self.columns], list(self.pk),
            [[n, list(cols)] for n, cols in self.uniques], seq, list(self.owned_seqs),
            [list(c) for c in self.checks], [list(f) for f in self.fkeys], self.view_sql,
            [list(i) for i in self.indexes], dict(self.comments), self.database, self.owner,
            [list(a) for a in self.acl] if self.acl is not None else None,
            {c: [list(a) for a in acl] for c, acl in self.col_acls.items()}, self.rls,
            [list(p) for p in self.policies], self.invoker,
        )

    @property
    def key(self) -> bytes:
        """The catalog row's key (table 0)."""
        return table_key(self.name, self.database)

    @classmethod
    def from_row(cls, row: tuple) -> "TableDef":
        tid, name, kind, cols, pk, uniques, seq, owned = row[:8]
        extra = list(row[8:]) + [None] * (12 - len(row[8:]))
        checks, fkeys, view_sql, indexes, comments, database, owner, acl, col_acls, rls, policies, invoker = extra[:12]
        return cls(
            table_id=tid, name=name, kind=kind, columns=[ColumnDef(*c) for c in cols], pk=list(pk),
            uniques=[(n, list(c)) for n, c in uniques], seq=SequenceDef(*seq) if seq else None,
            owned_seqs=list(owned), checks=[(n, t) for n, t in (checks or [])],
            fkeys=[list(f) for f in (fkeys or [])], view_sql=view_sql, indexes=[list(i) for i in (indexes or [])],
            comments=dict(comments or {}), database=database or DEFAULT_DATABASE,
            owner=owner if owner is not None else BOOTSTRAP_SUPERUSER,
            acl=[list(a) for a in acl] if acl is not None else None,
            col_acls={c: [list(a) for a in v] for c, v in (col_acls or {}).items()},
            rls=rls or "", policies=[list(p) for p in (policies or [])], invoker=bool(invoker),
        )

    @property
    def padded(self) -> bool:
        """True if stored rows may be shorter than the column list (instant ADD COLUMN)."""
        return any(c.instant for c in self.columns)

    def pad_fn(self) -> Any:
        """``row -> row`` filling columns added after the row was stored (None if never needed)."""
        if not self.padded:
            return None
        fill = tuple(c.missing for c in self.columns)
        n = len(fill)

        def pad(row: tuple) -> tuple:
            return row if len(row) >= n else row + fill[len(row):]

        return pad


class Catalog:
    """An immutable view of the catalog at some point; rebuilt (not mutated) on change.

    ``tables`` and ``by_id`` hold the relations of one database (``database``); roles and
    the list of databases are the cluster's.  ``scoped(db)`` is the same catalog seen from
    another database (sessions use their own; see ``EngineSession._catalog``)."""

    def __init__(self, tables: dict[str, TableDef], databases: set[str], version: int = 0,
                 next_table_id: int = FIRST_TABLE_ID, roles: dict[str, RoleDef] | None = None,
                 members: tuple[tuple[int, int, int, bool], ...] = BUILTIN_MEMBERS,
                 database: str = DEFAULT_DATABASE,
                 by_db: dict[str, dict[str, TableDef]] | None = None,
                 db_defs: dict[str, DatabaseDef] | None = None,
                 schemas: dict[tuple[str, str], tuple[int, list]] | None = None,
                 default_acls: dict[tuple[int, str, str, str], list] | None = None) -> None:
        self.database = database
        self.schemas = schemas if schemas is not None else {}  # (db, schema) -> (owner, acl), changed ones
        self.default_acls = default_acls if default_acls is not None else {}  # (role, db, schema, objtype) -> acl
        self.by_db = by_db if by_db is not None else {database: tables}
        self.tables = tables
        self.by_id = {t.table_id: t for t in tables.values()}
        self._scoped: dict[str, Catalog] = {database: self}
        self.databases = databases
        self.db_defs = db_defs if db_defs is not None else {}  # stored rows of ``databases``
        self.version = version
        self.next_table_id = next_table_id
        if roles is None:
            roles = {r.name: r for r in BUILTIN_ROLES.values()}
        self.roles = roles
        self.role_by_oid = {r.oid: r for r in roles.values()}
        self.members = members  # (roleid, member, grantor, admin_option), pg_auth_members rows

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[bytes, tuple]], database: str = DEFAULT_DATABASE) -> "Catalog":
        by_db: dict[str, dict[str, TableDef]] = {}
        dbs = {"postgres", "template1"}  # as initdb leaves them (template0 refuses connections)
        db_defs: dict[str, DatabaseDef] = {}
        version, next_id = 0, FIRST_TABLE_ID
        stored_roles: list[RoleDef] = []
        members = list(BUILTIN_MEMBERS)
        schemas: dict[tuple[str, str], tuple[int, list]] = {}
        default_acls: dict[tuple[int, str, str, str], list] = {}
        for key, row in rows:
            if key == VERSION_KEY:
                version, next_id = row
            elif key.startswith(b"t:"):
                t = TableDef.from_row(row)
                by_db.setdefault(t.database, {})[t.name] = t
            elif key.startswith(b"d:"):
                if row[0] != "template0":  # a row of it (ALTER DATABASE template0 SET) keeps it closed
                    dbs.add(row[0])
                d = DatabaseDef.from_row(row)
                if d is not None:
                    db_defs[d.name] = d
            elif key.startswith(b"r:"):
                stored_roles.append(RoleDef.from_row(row))
            elif key.startswith(b"m:"):
                members.append((row[0], row[1], row[2], bool(row[3])))
            elif key.startswith(b"n:"):
                schemas[(row[0], row[1])] = (row[2], [list(a) for a in row[3]])
            elif key.startswith(b"A:"):
                default_acls[(row[0], row[1], row[2], row[3])] = [list(a) for a in row[4]]
        by_oid = dict(BUILTIN_ROLES)
        for r in stored_roles:
            by_oid[r.oid] = r
        roles = {r.name: r for r in by_oid.values()}
        return cls(by_db.get(database, {}), dbs, version, next_id, roles, tuple(members), database, by_db, db_defs,
                   schemas, default_acls)

    def scoped(self, database: str) -> "Catalog":
        """This catalog as a session of ``database`` sees it (built once per catalog)."""
        cat = self._scoped.get(database)
        if cat is None:
            cat = Catalog(self.by_db.get(database, {}), self.databases, self.version, self.next_table_id,
                          self.roles, self.members, database, self.by_db, self.db_defs, self.schemas,
                          self.default_acls)
            cat._scoped = self._scoped
            self._scoped[database] = cat
        return cat

    def get(self, name: str) -> TableDef | None:
        return self.tables.get(name)

    def role(self, name: str) -> RoleDef | None:
        return self.roles.get(name)

    def database_def(self, name: str) -> DatabaseDef | None:
        """The database's row (a stand-in for a built-in one never altered); None if the
        database does not exist or is one of before oids were kept."""
        d = self.db_defs.get(name)
        if d is None and name in BUILTIN_DATABASE_OIDS and (name in self.databases or name == "template0"):
            d = DatabaseDef(name, BUILTIN_DATABASE_OIDS[name])
        return d


def col_type_name(c: ColumnDef) -> str:
    return T.display_name(c.type_oid, c.typmod)
