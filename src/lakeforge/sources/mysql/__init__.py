"""MySQL/MariaDB source: catalog through PyMySQL, rows through connectorx, CDC through the binlog."""
