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
            metadata(md, table);
        }
        System.out.println("ALL OK");
    }

    /** Each DatabaseMetaData call reports "ok ..." or "FAIL name: message" on its own line. */
    static void metadata(DatabaseMetaData md, String table) {
        try {
            try (ResultSet r = md.getTables(null, "public", table, new String[]{"TABLE"})) {
                check(r.next() && r.getString("TABLE_NAME").equals(table), "getTables");
            }
        } catch (Exception e) { System.out.println("FAIL getTables: " + e.getMessage()); }
        try {
            StringBuilder cols = new StringBuilder();
            try (ResultSet r = md.getColumns(null, "public", table, "%")) {
                while (r.next()) cols.append(r.getString("COLUMN_NAME")).append(':').append(r.getString("TYPE_NAME")).append(' ');
            }
            check(cols.toString().trim().equals("id:int4 name:varchar amount:numeric ts:timestamp"), "getColumns " + cols);
        } catch (Exception e) { System.out.println("FAIL getColumns: " + e.getMessage()); }
        try {
            try (ResultSet r = md.getPrimaryKeys(null, "public", table)) {
                check(r.next() && r.getString("COLUMN_NAME").equals("id"), "getPrimaryKeys");
            }
        } catch (Exception e) { System.out.println("FAIL getPrimaryKeys: " + e.getMessage()); }
    }
}
