"""SQLAlchemy 2 (psycopg 3 driver) against the writer and reader endpoints: Core DDL
(create_all with FK, index, server default), insert/select/join, an ORM session round trip,
and ``inspect(engine)`` reflection.  SQLAlchemy is pip-installed at test time if missing.

The reflection tests assert what SQLAlchemy reads back for ``drv_sa_reflect`` (serial key,
NOT NULL, defaults, CHAR/VARCHAR/NUMERIC typmods, a foreign key, a UNIQUE constraint, a
two-column unique index, a CHECK): the expected values are what the same calls return
against PostgreSQL 15 for the same DDL.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from decimal import Decimal

import pytest


def pip_import(module: str, requirement: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        pass
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.skip(f"cannot install {requirement}: {(r.stderr or r.stdout).strip()[-500:]}")
    importlib.invalidate_caches()
    return importlib.import_module(module)


sa = pip_import("sqlalchemy", "sqlalchemy>=2.0")
from sqlalchemy import orm  # noqa: E402


@pytest.fixture(scope="module")
def engine(cluster):
    eng = sa.create_engine(cluster.writer_dsn.replace("postgresql://", "postgresql+psycopg://"))
    md = sa.MetaData()
    sa.Table("drv_sa_author", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(50), nullable=False),
             sa.Column("active", sa.Boolean, server_default=sa.text("true")))
    sa.Table("drv_sa_book", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("author_id", sa.Integer, sa.ForeignKey("drv_sa_author.id")),
             sa.Column("title", sa.String(100)), sa.Column("price", sa.Numeric(8, 2)),
             sa.Index("ix_drv_sa_book_title", "title"))
    sa.Table("drv_sa_reflect", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("author_id", sa.Integer, sa.ForeignKey("drv_sa_author.id"), nullable=False),
             sa.Column("isbn", sa.CHAR(13), unique=True, comment="13 digits"),
             sa.Column("title", sa.String(100), nullable=False, server_default="untitled"),
             sa.Column("price", sa.Numeric(8, 2)), sa.Column("rating", sa.Float),
             sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("CURRENT_TIMESTAMP")),
             sa.Column("big", sa.BigInteger, server_default=sa.text("7")),
             sa.CheckConstraint("price > 0", name="drv_sa_reflect_price_check"),
             sa.Index("ix_drv_sa_reflect_ta", "title", "author_id", unique=True), comment="books to reflect")
    md.create_all(eng)
    md.create_all(eng)  # checkfirst: the second run must see the tables and do nothing
    eng.md = md  # type: ignore[attr-defined]
    yield eng
    eng.dispose()


def test_core_insert_select_join(engine):
    author, book = engine.md.tables["drv_sa_author"], engine.md.tables["drv_sa_book"]
    with engine.begin() as c:
        c.execute(sa.insert(author), [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}])
        c.execute(sa.insert(book).values(id=1, author_id=1, title="t1", price=Decimal("9.5")))
    with engine.connect() as c:
        rows = c.execute(sa.select(author.c.name, book.c.title, book.c.price)
                         .join(book, author.c.id == book.c.author_id)).all()
        assert rows == [("ann", "t1", Decimal("9.50"))]
        assert c.execute(sa.select(author).order_by(author.c.id)).all() == [(1, "ann", True), (2, "bob", True)]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:  # the whole transaction rolls back
        c.execute(sa.insert(book).values(id=3, author_id=2, title="t3"))
        c.execute(sa.insert(book).values(id=1, author_id=2))
    with engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(book)).scalar() == 1


def test_orm_session_round_trip(engine):
    class Base(orm.DeclarativeBase):
        pass

    class Thing(Base):
        __tablename__ = "drv_sa_thing"
        id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
        name: orm.Mapped[str] = orm.mapped_column(sa.String(30))

    Base.metadata.create_all(engine)
    with orm.Session(engine) as s:
        s.add_all([Thing(name="x"), Thing(name="y")])
        s.commit()
        t = s.scalars(sa.select(Thing).where(Thing.name == "y")).one()
        t.name = "z"
        s.commit()
        s.delete(s.get(Thing, 1))
        s.flush()
        s.rollback()
        assert [(t.id, t.name) for t in s.scalars(sa.select(Thing).order_by(Thing.id))] == [(1, "x"), (2, "z")]


def test_reflection_table_names_and_reader(engine, cluster):
    insp = sa.inspect(engine)
    assert {"drv_sa_author", "drv_sa_book"} <= set(insp.get_table_names())
    assert insp.has_table("drv_sa_book") and not insp.has_table("drv_sa_nope")
    reader = sa.create_engine(cluster.reader_dsn.replace("postgresql://", "postgresql+psycopg://"))
    try:
        deadline = time.monotonic() + 10
        while not sa.inspect(reader).has_table("drv_sa_reflect") and time.monotonic() < deadline:
            time.sleep(0.2)
        rinsp = sa.inspect(reader)  # reflection reads the catalog on a reader too
        assert _columns(rinsp.get_columns("drv_sa_reflect"), reader) == REFLECT_COLUMNS
        assert [i["name"] for i in rinsp.get_indexes("drv_sa_reflect")] == ["drv_sa_reflect_isbn_key",
                                                                            "ix_drv_sa_reflect_ta"]
        assert [f["referred_table"] for f in rinsp.get_foreign_keys("drv_sa_reflect")] == ["drv_sa_author"]
        with reader.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM drv_sa_author")).scalar() >= 0
            with pytest.raises(sa.exc.InternalError, match="read-only"):
                c.execute(sa.text("INSERT INTO drv_sa_author (id, name) VALUES (9, 'r')"))
    finally:
        reader.dispose()


REFLECT_COLUMNS = [  # name, type, nullable, default, autoincrement
    ("id", "INTEGER", False, "nextval('drv_sa_reflect_id_seq'::regclass)", True),
    ("author_id", "INTEGER", False, None, False),
    ("isbn", "CHAR(13)", True, None, False),
    ("title", "VARCHAR(100)", False, "'untitled'::character varying", False),
    ("price", "NUMERIC(8, 2)", True, None, False),
    ("rating", "DOUBLE PRECISION", True, None, False),
    ("created", "TIMESTAMP WITH TIME ZONE", True, "CURRENT_TIMESTAMP", False),
    ("big", "BIGINT", True, "7", False),
]


def _columns(cols, engine):
    return [(c["name"], c["type"].compile(dialect=engine.dialect), c["nullable"], c["default"], c["autoincrement"])
            for c in cols]


def test_reflection_get_columns(engine):
    insp = sa.inspect(engine)
    assert _columns(insp.get_columns("drv_sa_reflect"), engine) == REFLECT_COLUMNS
    cols = {c["name"]: c for c in insp.get_columns("drv_sa_book")}
    assert list(cols) == ["id", "author_id", "title", "price"]
    assert isinstance(cols["price"]["type"], sa.Numeric) and cols["price"]["type"].scale == 2
    assert all(c["comment"] is None for c in cols.values())


def test_reflection_keys_and_constraints(engine):
    insp = sa.inspect(engine)
    pk = insp.get_pk_constraint("drv_sa_reflect")
    assert (pk["name"], pk["constrained_columns"]) == ("drv_sa_reflect_pkey", ["id"])
    fks = insp.get_foreign_keys("drv_sa_reflect")
    assert [(f["name"], f["constrained_columns"], f["referred_schema"], f["referred_table"], f["referred_columns"])
            for f in fks] == [("drv_sa_reflect_author_id_fkey", ["author_id"], None, "drv_sa_author", ["id"])]
    assert [(f["constrained_columns"], f["referred_table"], f["referred_columns"])
            for f in insp.get_foreign_keys("drv_sa_book")] == [(["author_id"], "drv_sa_author", ["id"])]
    assert insp.get_foreign_keys("drv_sa_author") == []
    uqs = insp.get_unique_constraints("drv_sa_reflect")
    assert [(u["name"], u["column_names"]) for u in uqs] == [("drv_sa_reflect_isbn_key", ["isbn"])]
    checks = insp.get_check_constraints("drv_sa_reflect")
    assert [(c["name"], c["sqltext"]) for c in checks] == [("drv_sa_reflect_price_check", "price > 0::numeric")]
    assert insp.get_table_comment("drv_sa_reflect") == {"text": "books to reflect"}
    assert insp.get_table_comment("drv_sa_book") == {"text": None}
    assert [c["comment"] for c in insp.get_columns("drv_sa_reflect")] == [None, None, "13 digits"] + [None] * 5


def test_reflection_get_indexes(engine):
    insp = sa.inspect(engine)
    idx = insp.get_indexes("drv_sa_reflect")
    assert [(i["name"], i["column_names"], i["unique"], i.get("duplicates_constraint")) for i in idx] == [
        ("drv_sa_reflect_isbn_key", ["isbn"], True, "drv_sa_reflect_isbn_key"),
        ("ix_drv_sa_reflect_ta", ["title", "author_id"], True, None)]
    idx = insp.get_indexes("drv_sa_book")
    assert [(i["name"], i["column_names"], i["unique"]) for i in idx] == [("ix_drv_sa_book_title", ["title"], False)]


def test_reflection_get_multi(engine):
    insp = sa.inspect(engine)
    names = ["drv_sa_author", "drv_sa_reflect"]
    cols = insp.get_multi_columns(filter_names=names)
    assert _columns(cols[(None, "drv_sa_reflect")], engine) == REFLECT_COLUMNS
    assert [c["name"] for c in cols[(None, "drv_sa_author")]] == ["id", "name", "active"]
    pks = insp.get_multi_pk_constraint(filter_names=names)
    assert {k[1]: v["constrained_columns"] for k, v in pks.items()} == {"drv_sa_author": ["id"], "drv_sa_reflect": ["id"]}
    fks = insp.get_multi_foreign_keys(filter_names=names)
    assert {k[1]: [f["referred_table"] for f in v] for k, v in fks.items()} == {
        "drv_sa_author": [], "drv_sa_reflect": ["drv_sa_author"]}
    idx = insp.get_multi_indexes(filter_names=names)
    assert {k[1]: [i["name"] for i in v] for k, v in idx.items()} == {
        "drv_sa_author": [], "drv_sa_reflect": ["drv_sa_reflect_isbn_key", "ix_drv_sa_reflect_ta"]}
    uqs = insp.get_multi_unique_constraints(filter_names=names)
    assert {k[1]: [u["name"] for u in v] for k, v in uqs.items()} == {
        "drv_sa_author": [], "drv_sa_reflect": ["drv_sa_reflect_isbn_key"]}
    checks = insp.get_multi_check_constraints(filter_names=names)
    assert {k[1]: [c["sqltext"] for c in v] for k, v in checks.items()} == {
        "drv_sa_author": [], "drv_sa_reflect": ["price > 0::numeric"]}
    comments = insp.get_multi_table_comment(filter_names=names)
    assert {k[1]: v["text"] for k, v in comments.items()} == {"drv_sa_author": None, "drv_sa_reflect": "books to reflect"}


def test_reflection_autoload_round_trip(engine):
    """Table(autoload_with=...) rebuilds the table; create_all of the copy under another name
    makes the same DDL (the reflected types, defaults and constraints are usable as-is)."""
    t = sa.Table("drv_sa_reflect", sa.MetaData(), autoload_with=engine)
    assert [c.name for c in t.primary_key.columns] == ["id"]
    assert [(fk.parent.name, fk.column.table.name, fk.column.name) for fk in t.foreign_keys] == \
        [("author_id", "drv_sa_author", "id")]
    assert {i.name: ([c.name for c in i.columns], i.unique) for i in t.indexes} == {
        "ix_drv_sa_reflect_ta": (["title", "author_id"], True)}
    md2 = sa.MetaData()
    t.metadata.tables["drv_sa_author"].to_metadata(md2)  # the FK's target (reflected along)
    copy = t.to_metadata(md2, name="drv_sa_reflect_copy")
    for c in list(copy.constraints):  # constraint names are per table
        if c.name and c.name.startswith("drv_sa_reflect_"):
            c.name = c.name.replace("drv_sa_reflect_", "drv_sa_reflect_copy_")
    for i in copy.indexes:
        i.name = i.name + "_copy"
    copy.c.id.server_default = None  # the serial default names the original table's sequence
    md2.create_all(engine, tables=[copy])
    try:
        got = _columns(sa.inspect(engine).get_columns("drv_sa_reflect_copy"), engine)
        assert got[1:] == REFLECT_COLUMNS[1:]
        assert sa.inspect(engine).get_table_comment("drv_sa_reflect_copy") == {"text": "books to reflect"}
        with engine.begin() as c:
            c.execute(sa.insert(copy).values(id=1, author_id=1, isbn="x" * 13, price=Decimal("1.50")))
            row = c.execute(sa.select(copy.c.title, copy.c.big, copy.c.isbn)).one()
            assert row == ("untitled", 7, "x" * 13)
    finally:
        md2.drop_all(engine, tables=[copy])


def test_reflection_schemas_views_sequences(engine):
    with engine.begin() as c:
        c.exec_driver_sql("DROP VIEW IF EXISTS drv_sa_view")
        c.exec_driver_sql("DROP VIEW IF EXISTS drv_sa_view2")
        c.exec_driver_sql("CREATE VIEW drv_sa_view AS SELECT id, name FROM drv_sa_author")
        c.exec_driver_sql("CREATE VIEW drv_sa_view2 AS SELECT b.id, b.title AS t, a.name FROM drv_sa_book b "
                          "JOIN drv_sa_author a ON a.id = b.author_id WHERE b.price > 2 AND a.name <> 'x' ORDER BY b.id")
    insp = sa.inspect(engine)
    assert insp.get_schema_names() == ["information_schema", "public"] and insp.has_schema("public")
    assert "drv_sa_view" in insp.get_view_names() and "drv_sa_view" not in insp.get_table_names()
    assert [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns("drv_sa_view")] == [
        ("id", "INTEGER", True), ("name", "VARCHAR(50)", True)]
    # the definition as PostgreSQL prints a view back: qualified columns, implicit casts, one clause a line
    assert insp.get_view_definition("drv_sa_view") == \
        " SELECT drv_sa_author.id,\n    drv_sa_author.name\n   FROM drv_sa_author;"
    assert insp.get_view_definition("drv_sa_view2") == (
        " SELECT b.id,\n    b.title AS t,\n    a.name\n   FROM (drv_sa_book b\n"
        "     JOIN drv_sa_author a ON ((a.id = b.author_id)))\n"
        "  WHERE ((b.price > (2)::numeric) AND ((a.name)::text <> 'x'::text))\n  ORDER BY b.id;")
    assert "drv_sa_reflect_id_seq" in insp.get_sequence_names() and insp.has_sequence("drv_sa_reflect_id_seq")
    assert insp.has_index("drv_sa_reflect", "ix_drv_sa_reflect_ta") and not insp.has_index("drv_sa_reflect", "nope")
    assert insp.get_enums() == [] and insp.get_domains() == [] and insp.get_materialized_view_names() == []
    assert insp.get_table_options("drv_sa_reflect") == {}
