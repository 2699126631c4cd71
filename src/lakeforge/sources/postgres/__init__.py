"""PostgreSQL source: catalog through psycopg 3, rows through ADBC (COPY binary), CDC through pgoutput."""
