"""Built-in types for pg_type: (oid, typname, typlen, typcategory, typelem, typarray, typbyval).

All live in pg_catalog (typnamespace 11) with typtype 'b' (base) unless noted; array types
('_' + name) are generated from the typarray column, with typcategory 'A' and typlen -1.
"""

from __future__ import annotations

# oid, name, len, category, array oid, byval
BASE_TYPES: list[tuple[int, str, int, str, int, bool]] = [
    (16, "bool", 1, "B", 1000, True), (17, "bytea", -1, "U", 1001, False),
    (18, "char", 1, "Z", 1002, True), (19, "name", 64, "S", 1003, False),
    (20, "int8", 8, "N", 1016, True), (21, "int2", 2, "N", 1005, True),
    (22, "int2vector", -1, "A", 1006, False), (23, "int4", 4, "N", 1007, True),
    (24, "regproc", 4, "N", 1008, True), (25, "text", -1, "S", 1009, False),
    (26, "oid", 4, "N", 1028, True), (27, "tid", 6, "U", 1010, False),
    (28, "xid", 4, "U", 1011, True), (29, "cid", 4, "U", 1012, True),
    (30, "oidvector", -1, "A", 1013, False), (114, "json", -1, "U", 199, False),
    (142, "xml", -1, "U", 143, False), (194, "pg_node_tree", -1, "Z", 0, False),
    (600, "point", 16, "G", 1017, False), (650, "cidr", -1, "I", 651, False),
    (700, "float4", 4, "N", 1021, True), (701, "float8", 8, "N", 1022, True),
    (705, "unknown", -2, "X", 0, False), (790, "money", 8, "N", 791, True),
    (829, "macaddr", 6, "U", 1040, False), (869, "inet", -1, "I", 1041, False),
    (1033, "aclitem", 12, "U", 1034, False), (1042, "bpchar", -1, "S", 1014, False),
    (1043, "varchar", -1, "S", 1015, False), (1082, "date", 4, "D", 1182, True),
    (1083, "time", 8, "D", 1183, True), (1114, "timestamp", 8, "D", 1115, True),
    (1184, "timestamptz", 8, "D", 1185, True), (1186, "interval", 16, "T", 1187, False),
    (1266, "timetz", 12, "D", 1270, False), (1560, "bit", -1, "V", 1561, False),
    (1562, "varbit", -1, "V", 1563, False), (1700, "numeric", -1, "N", 1231, False),
    (2202, "regprocedure", 4, "N", 2207, True), (2203, "regoper", 4, "N", 2208, True),
    (2205, "regclass", 4, "N", 2210, True), (2206, "regtype", 4, "N", 2211, True),
    (4089, "regnamespace", 4, "N", 4090, True), (2950, "uuid", 16, "U", 2951, False),
    (3220, "pg_lsn", 8, "U", 3221, True), (3614, "tsvector", -1, "U", 3643, False),
    (3615, "tsquery", -1, "U", 3645, False), (3802, "jsonb", -1, "U", 3807, False),
    (4072, "jsonpath", -1, "U", 4073, False), (3904, "int4range", -1, "R", 3905, False),
]
# pseudo types: oid, name (typtype 'p', category 'P')
PSEUDO_TYPES: list[tuple[int, str]] = [
    (2249, "record", ), (2275, "cstring"), (2276, "any"), (2277, "anyarray"), (2278, "void"),
    (2279, "trigger"), (2283, "anyelement"), (2287, "_record"), (3500, "anyenum"),
]
COLLATABLE = {25, 1042, 1043, 19}
_VECTOR_ELEM = {22: 21, 30: 26}  # int2vector / oidvector: arrays of int2 / oid


def all_types() -> list[tuple]:
    """Rows (oid, typname, typlen, typbyval, typtype, typcategory, typelem, typarray, typdelim)."""
    out = []
    for oid, name, ln, cat, arr, byval in BASE_TYPES:
        out.append((oid, name, ln, byval, "b", cat, _VECTOR_ELEM.get(oid, 0), arr))
        if arr:
            out.append((arr, "_" + name, -1, False, "b", "A", oid, 0))
    for oid, name in PSEUDO_TYPES:
        out.append((oid, name, -1 if oid != 2278 else 4, oid == 2278, "p", "P", 2249 if oid == 2287 else 0,
                    2287 if oid == 2249 else 0))
    return out
