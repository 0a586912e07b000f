"""PostgreSQL access: where the database is, the connection pool, and the migrations."""
