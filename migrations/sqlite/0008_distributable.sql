-- A distributable schema is a PostgreSQL concern (migrations/postgres/0008_distributable.sql);
-- a SQLite database is one file and is never distributed. This file keeps the version numbers
-- of both folders aligned.
SELECT 1;
