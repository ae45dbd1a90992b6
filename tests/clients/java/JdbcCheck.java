/** PostgreSQL JDBC against Borealis: DDL, PreparedStatement (past prepareThreshold, so server-side),
 *  transactions, DatabaseMetaData.  Args: JDBC URL, a fresh table name.  Prints "ok ..." per check,
 *  "FAIL name: message" for a metadata call that failed, and "ALL OK" at the end. */
import java.sql.*;
public class JdbcCheck {
    static void check(boolean ok, String what) { if (!ok) throw new AssertionError(what); System.out.println("ok " + what); }
    public static void main(String[] a) throws Exception {
        String url = a[0]; String table = a[1];
        try (Connection c = DriverManager.getConnection(url, "postgres", "")) {
            check(c.getMetaData().getDatabaseProductName().equals("PostgreSQL"), "product name");
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE " + table + " (id int PRIMARY KEY, name varchar(20) NOT NULL, amount numeric(8,2), ts timestamp)");
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO " + table + " (id, name, amount, ts) VALUES (?, ?, ?, ?)")) {
                for (int i = 1; i <= 6; i++) {  // past prepareThreshold=5: server-side prepared statement
                    p.setInt(1, i); p.setString(2, "n" + i); p.setBigDecimal(3, new java.math.BigDecimal(i + ".25"));
                    p.setTimestamp(4, Timestamp.valueOf("2024-01-02 03:04:05")); p.executeUpdate();
                }
            }
            try (PreparedStatement p = c.prepareStatement("SELECT name, amount FROM " + table + " WHERE id = ?")) {
                for (int i = 1; i <= 6; i++) {
                    p.setInt(1, i);
                    try (ResultSet r = p.executeQuery()) {
                        check(r.next() && r.getString(1).equals("n" + i) && r.getBigDecimal(2).equals(new java.math.BigDecimal(i + ".25")), "select row " + i);
                    }
                }
            }
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.executeUpdate("INSERT INTO " + table + " (id, name) VALUES (100, 'rolled back')");
                c.rollback();
                s.executeUpdate("INSERT INTO " + table + " (id, name) VALUES (101, 'committed')");
                c.commit();
                try (ResultSet r = s.executeQuery("SELECT string_agg(id::text, ',') FROM " + table + " WHERE id >= 100")) {
                    check(r.next() && "101".equals(r.getString(1)), "transactions");
                }
                c.commit();
            }
            c.setAutoCommit(true);
            DatabaseMetaData md = c.getMetaData();
            metadata(c, md, table);
        }
        System.out.println("ALL OK");
    }

    interface Call { ResultSet run() throws SQLException; }

    /** One metadata call as "md NAME: row; row; ..." (the listed columns, comma-separated), or
     *  "FAIL NAME: message" when it throws. */
    static void rows(String name, Call call, String... cols) {
        StringBuilder b = new StringBuilder();
        try (ResultSet r = call.run()) {
            while (r.next()) {
                if (b.length() > 0) b.append("; ");
                for (int i = 0; i < cols.length; i++) b.append(i > 0 ? "," : "").append(r.getString(cols[i]));
            }
            System.out.println("md " + name + ": " + b);
        } catch (Exception e) { System.out.println("FAIL " + name + ": " + e.getMessage()); }
    }

    /** DatabaseMetaData over the test table and a child table with a serial key, a foreign key,
     *  a UNIQUE constraint, a default and a two-column index. */
    static void metadata(Connection c, DatabaseMetaData md, String table) throws SQLException {
        try {
            try (ResultSet r = md.getTables(null, "public", table, new String[]{"TABLE"})) {
                check(r.next() && r.getString("TABLE_NAME").equals(table), "getTables");
            }
        } catch (Exception e) { System.out.println("FAIL getTables: " + e.getMessage()); }
        String child = table + "_child";
        try (Statement s = c.createStatement()) {
            s.execute("CREATE TABLE " + child + " (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES "
                      + table + " (id), code char(4) UNIQUE, note text DEFAULT 'n/a', CHECK (parent_id > 0))");
            s.execute("CREATE INDEX " + child + "_note_idx ON " + child + " (note, parent_id)");
        }
        String like = table.replace("_", "\\_") + "%";
        rows("getTables", () -> md.getTables(null, "public", like, new String[]{"TABLE"}), "TABLE_NAME", "TABLE_TYPE");
        rows("getColumns", () -> md.getColumns(null, "public", like, "%"), "TABLE_NAME", "COLUMN_NAME", "TYPE_NAME",
             "DATA_TYPE", "COLUMN_SIZE", "DECIMAL_DIGITS", "NULLABLE", "COLUMN_DEF", "IS_AUTOINCREMENT", "ORDINAL_POSITION");
        rows("getPrimaryKeys", () -> md.getPrimaryKeys(null, "public", child), "COLUMN_NAME", "KEY_SEQ", "PK_NAME");
        rows("getIndexInfo", () -> md.getIndexInfo(null, "public", child, false, false), "INDEX_NAME", "NON_UNIQUE",
             "ORDINAL_POSITION", "COLUMN_NAME", "ASC_OR_DESC", "TYPE");
        rows("getIndexInfoUnique", () -> md.getIndexInfo(null, "public", child, true, false), "INDEX_NAME");
        rows("getImportedKeys", () -> md.getImportedKeys(null, "public", child), "PKTABLE_NAME", "PKCOLUMN_NAME",
             "FKTABLE_NAME", "FKCOLUMN_NAME", "KEY_SEQ", "FK_NAME", "PK_NAME", "UPDATE_RULE", "DELETE_RULE", "DEFERRABILITY");
        rows("getExportedKeys", () -> md.getExportedKeys(null, "public", table), "FKTABLE_NAME", "FKCOLUMN_NAME", "FK_NAME");
        rows("getCrossReference", () -> md.getCrossReference(null, "public", table, null, "public", child), "FK_NAME");
        rows("getBestRowIdentifier", () -> md.getBestRowIdentifier(null, "public", child,
             DatabaseMetaData.bestRowSession, true), "COLUMN_NAME", "TYPE_NAME", "DATA_TYPE");
        rows("getSchemas", md::getSchemas, "TABLE_SCHEM");
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT * FROM " + child)) {
            ResultSetMetaData m = r.getMetaData();
            StringBuilder b = new StringBuilder();
            for (int i = 1; i <= m.getColumnCount(); i++)
                b.append(i > 1 ? "; " : "").append(m.getColumnName(i)).append(',').append(m.getTableName(i)).append(',')
                 .append(m.getColumnTypeName(i)).append(',').append(m.isNullable(i)).append(',').append(m.isAutoIncrement(i));
            System.out.println("md ResultSetMetaData: " + b);
        } catch (Exception e) { System.out.println("FAIL ResultSetMetaData: " + e.getMessage()); }
    }
}
