"""Owners and ACLs in catalog rows (engine.catalog, engine.privileges): a relation's row of
before owners were recorded reads as the bootstrap superuser's with the default ACL, and
owner, ACLs and policies survive the row round trip (what storage keeps and readers replay)."""

from __future__ import annotations

from engine import privileges as P
from engine import types as T
from engine.catalog import BOOTSTRAP_SUPERUSER, Catalog, ColumnDef, RoleDef, TableDef, table_key


def test_a_row_of_before_owners_is_the_bootstrap_superusers() -> None:
    old_row = (16400, "t", "r", [["k", T.INT4, -1, False, None]], [0], [], None, [], [], [], None, [], {}, "postgres")
    td = TableDef.from_row(old_row)
    assert td.owner == BOOTSTRAP_SUPERUSER and td.acl is None and td.col_acls == {} and td.policies == []
    assert P.table_acl(td) == [[BOOTSTRAP_SUPERUSER, BOOTSTRAP_SUPERUSER, "arwdDxt", ""]]
    cat = Catalog.from_rows([(table_key("t"), old_row)])
    assert P.acl_text(P.table_acl(cat.get("t")), cat) == ["postgres=arwdDxt/postgres"]
    nobody = RoleDef(20000, "nobody")
    assert not P.holds_on(cat, nobody, cat.get("t"), "r")
    assert P.holds_on(cat, cat.role("postgres"), cat.get("t"), "r")


def test_owner_acls_and_policies_survive_the_row() -> None:
    td = TableDef(16401, "u", "r", [ColumnDef("a", T.INT4), ColumnDef("b", T.TEXT)], owner=16500,
                  acl=[[16500, 16500, "arwdDxt", ""], [0, 16500, "r", ""], [16501, 16500, "rw", "r"]],
                  col_acls={"b": [[16502, 16500, "w", ""]]}, rls="ef",
                  policies=[["p", False, "w", [16501], "a > 0", "a < 10"]])
    back = TableDef.from_row(td.to_row())
    assert (back.owner, back.acl, back.col_acls, back.rls, back.policies) == (
        td.owner, td.acl, td.col_acls, td.rls, td.policies)


def test_acl_updates_follow_aclupdate() -> None:
    acl = P.default_acl("r", 16500)
    acl = P.update(acl, 16501, 16500, "ra", True, True)  # GRANT SELECT, INSERT ... WITH GRANT OPTION
    acl = P.update(acl, 16502, 16501, "r", True, False)  # the grantee passes SELECT on
    assert P.dependent_grants(acl, 16501, "r")
    acl = P.revoke_cascade(acl, 16501, "r")
    acl = P.update(acl, 16501, 16500, "r", False, True)  # REVOKE GRANT OPTION FOR SELECT
    assert acl == [[16500, 16500, "arwdDxt", ""], [16501, 16500, "ar", "a"]]
    # ALTER ... OWNER TO the grantee: its item and the owner's become one (aclnewowner)
    assert P.new_owner(acl, 16500, 16501) == [[16501, 16501, "arwdDxt", "a"]]
    assert P.item_text([0, 16501, "r", ""], Catalog({}, set())) == "=r/16501"  # unknown roles by oid
