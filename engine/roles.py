"""Questions about roles asked by sessions, login and the pg_catalog views.

Roles live in the catalog (``engine.catalog.RoleDef``, rows ``b"r:"`` of table 0, written
by ``engine.ddl_roles``).  A session has a *session user* (who logged in, or SET SESSION
AUTHORIZATION) and a *current user* (``EngineSession.user``; SET ROLE changes it).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from engine import errors
from engine.catalog import Catalog, RoleDef


def memberships(catalog: Catalog, oid: int) -> set[int]:
    """Oids of every role ``oid`` is a member of, directly or through other roles."""
    direct: dict[int, list[int]] = {}
    for roleid, member, _grantor, _admin in catalog.members:
        direct.setdefault(member, []).append(roleid)
    seen: set[int] = set()
    todo = [oid]
    while todo:
        for r in direct.get(todo.pop(), ()):
            if r not in seen:
                seen.add(r)
                todo.append(r)
    return seen


def is_member(catalog: Catalog, member: RoleDef, role: RoleDef) -> bool:
    """Superusers are members of everything; otherwise membership is transitive."""
    return member.superuser or member.oid == role.oid or role.oid in memberships(catalog, member.oid)


def has_admin(catalog: Catalog, who: RoleDef, role: RoleDef) -> bool:
    """May ``who`` grant ``role`` to others (admin option held directly or through a role)?"""
    if who.superuser:
        return True
    mine = memberships(catalog, who.oid) | {who.oid}
    return any(roleid == role.oid and member in mine and admin for roleid, member, _g, admin in catalog.members)


def current(session: Any, catalog: Catalog) -> RoleDef:
    """The session's current role; a role dropped under a live session reads as a
    non-privileged one (its statements then fail their privilege checks)."""
    r = catalog.role(session.user)
    return r if r is not None else RoleDef(0, session.user)


def is_superuser(session: Any, catalog: Catalog | None = None) -> bool:
    cat = catalog if catalog is not None else session.db.catalog()
    return current(session, cat).superuser


def check_login(catalog: Catalog, user: str) -> RoleDef:
    """The checks PostgreSQL makes once a client has authenticated (FATAL 28000)."""
    role = catalog.role(user)
    if role is None:
        raise errors.InvalidAuthorization(f'role "{user}" does not exist')
    if not role.canlogin:
        raise errors.InvalidAuthorization(f'role "{user}" is not permitted to log in')
    return role


def login_settings(role: Any) -> list[tuple[str, str]]:
    """The defaults ALTER ROLE ... SET stored for the role (or ALTER DATABASE ... SET for a
    ``DatabaseDef``), applied to its new sessions."""
    out = []
    for item in role.config or ():
        key, _, value = item.partition("=")
        if key and key.lower() not in ("role", "session_authorization", "is_superuser"):
            out.append((key.lower(), value))
    return out


def password_expired(role: RoleDef, now: _dt.datetime | None = None) -> bool:
    if role.valid_until is None:
        return False
    now = now or _dt.datetime.now(_dt.timezone.utc)
    vu = role.valid_until if role.valid_until.tzinfo else role.valid_until.replace(tzinfo=_dt.timezone.utc)
    return vu < now


def _name_of(value: str) -> str:
    v = value.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1].replace(v[0] * 2, v[0])
    return v


def set_role(session: Any, catalog: Catalog, value: str) -> None:
    """SET ROLE name | NONE (DEFAULT and RESET ROLE are NONE): the session user must be a
    member of the role (42501); an unknown role is 22023 as in PostgreSQL."""
    name = _name_of(value)
    low = name.lower() if not value.strip().startswith(("'", '"')) else name
    if low in ("none", "default"):
        session.user = session.session_user
        session.gucs["role"] = "none"
    else:
        role = catalog.role(low)
        if role is None:
            raise errors.SqlError(f'role "{low}" does not exist', sqlstate="22023")
        me = catalog.role(session.session_user) or RoleDef(0, session.session_user)
        if not is_member(catalog, me, role):
            raise errors.SqlError(f'permission denied to set role "{low}"', sqlstate="42501")
        session.user = role.name
        session.gucs["role"] = role.name
    session.gucs["is_superuser"] = "on" if is_superuser(session, catalog) else "off"


def set_session_authorization(session: Any, catalog: Catalog, value: str) -> None:
    """SET SESSION AUTHORIZATION name | DEFAULT: only a superuser who logged in may."""
    name = _name_of(value)
    low = name.lower() if not value.strip().startswith(("'", '"')) else name
    login = catalog.role(session.login_user)
    target = session.login_user if low == "default" else low
    if target != session.login_user and not (login is not None and login.superuser):
        raise errors.SqlError("permission denied to set session authorization", sqlstate="42501")
    if catalog.role(target) is None:
        raise errors.SqlError(f'role "{target}" does not exist', sqlstate="22023")
    session.session_user = session.user = target
    session.gucs["session_authorization"] = target
    session.gucs["role"] = "none"
    session.gucs["is_superuser"] = "on" if is_superuser(session, catalog) else "off"
