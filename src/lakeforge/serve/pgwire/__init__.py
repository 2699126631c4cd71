"""The PostgreSQL wire protocol over the lake (``lakeforge serve sql``)."""
