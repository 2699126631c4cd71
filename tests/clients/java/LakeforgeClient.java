// pgJDBC against lakeforge serve sql: run each query (a PreparedStatement, with an integer parameter when it
// has a ?) and print the columns' type names and every value read with the typed getter for its type, one
// tab-separated line per row (its 6th run: pgJDBC asks for binary results from the 5th); then DatabaseMetaData.getTables / getColumns as DBeaver and Metabase call them.
// Usage: java -cp postgresql.jar LakeforgeClient.java URL USER PASSWORD QUERY...
import java.sql.*;
import java.util.HexFormat;

public class LakeforgeClient {
    public static void main(String[] args) throws Exception {
        try (Connection conn = DriverManager.getConnection(args[0], args[1], args[2])) {
            for (int q = 3; q < args.length; q++) {
                try (PreparedStatement st = conn.prepareStatement(args[q])) {
                    if (args[q].contains("?")) st.setInt(1, 3);
                    // the 5th execution on is server-prepared with binary results (prepareThreshold=5)
                    for (int run = 1; run < 6; run++) { try (ResultSet rs = st.executeQuery()) { while (rs.next()) { } } }
                    try (ResultSet rs = st.executeQuery()) { print(rs); }
                }
            }
            DatabaseMetaData meta = conn.getMetaData();
            try (ResultSet rs = meta.getTables(null, "gold", "%", new String[] {"TABLE"})) {
                while (rs.next()) System.out.println("TABLE\t" + rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME"));
            }
            try (ResultSet rs = meta.getColumns(null, "gold", "types", "c_dec%")) {
                while (rs.next()) System.out.println("COLUMN\t" + rs.getString("COLUMN_NAME") + "\t" + rs.getString("TYPE_NAME")
                    + "\t" + rs.getInt("COLUMN_SIZE") + "\t" + rs.getInt("DECIMAL_DIGITS"));
            }
        }
    }

    static void print(ResultSet rs) throws SQLException {
        ResultSetMetaData md = rs.getMetaData();
        StringBuilder head = new StringBuilder("TYPES");
        for (int i = 1; i <= md.getColumnCount(); i++) head.append('\t').append(md.getColumnTypeName(i));
        System.out.println(head);
        while (rs.next()) {
            StringBuilder row = new StringBuilder("ROW");
            for (int i = 1; i <= md.getColumnCount(); i++) row.append('\t').append(value(rs, i, md.getColumnTypeName(i)));
            System.out.println(row);
        }
    }

    static String value(ResultSet rs, int i, String type) throws SQLException {
        String text = switch (type) {
            case "numeric" -> { var v = rs.getBigDecimal(i); yield v == null ? null : v.toPlainString(); }
            case "int2", "int4", "int8" -> { long v = rs.getLong(i); yield rs.wasNull() ? null : Long.toString(v); }
            case "timestamptz" -> { var v = rs.getObject(i, java.time.OffsetDateTime.class); yield v == null ? null : v.toInstant().toString(); }
            case "timestamp" -> { var v = rs.getObject(i, java.time.LocalDateTime.class); yield v == null ? null : v.toString(); }
            case "date" -> { var v = rs.getObject(i, java.time.LocalDate.class); yield v == null ? null : v.toString(); }
            case "bytea" -> { var v = rs.getBytes(i); yield v == null ? null : HexFormat.of().formatHex(v); }
            case "bool" -> { boolean v = rs.getBoolean(i); yield rs.wasNull() ? null : Boolean.toString(v); }
            case "float8" -> { double v = rs.getDouble(i); yield rs.wasNull() ? null : Double.toString(v); }
            default -> rs.getString(i);
        };
        return text == null ? "NULL" : text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r");
    }
}
