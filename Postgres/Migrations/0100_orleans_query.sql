-- The catalogue of named queries. Orleans' ADO.NET providers read it once at start-up with
-- "SELECT QueryKey, QueryText FROM OrleansQuery" (unquoted, so PostgreSQL folds the names to lower case)
-- and run each text as a command with @Named parameters bound by Npgsql.
CREATE TABLE IF NOT EXISTS orleansquery
(
    querykey  varchar(64) NOT NULL,
    querytext text        NOT NULL,
    CONSTRAINT pk_orleansquery PRIMARY KEY (querykey)
);
