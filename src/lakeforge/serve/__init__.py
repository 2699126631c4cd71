"""Serving the lake: publishing tables into PostgreSQL and MariaDB/MySQL (``publish``, ``destinations``), a
PostgreSQL-protocol SQL endpoint (``sql_endpoint``) and dashboards (``web``)."""
