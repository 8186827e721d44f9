-- Grain state for Microsoft.Orleans.Persistence.AdoNet 10.4.2 (AdoNetGrainStorage).
--
-- A grain is identified by service, grain type and its key as the provider splits it: a Guid key as two
-- 64-bit halves (n0, n1), an integer key in n1, a string key (and any key extension) in the extension
-- column. The hashes the provider computes are stored for diagnostics only: lookups use the full key, so
-- a different hash picker can never hide a row.
--
-- version is the grain's ETag. A write succeeds only with the version the grain read (NULL: no row yet)
-- and returns the next one; on a conflict it returns no row, which the provider turns into
-- InconsistentStateException.
CREATE TABLE IF NOT EXISTS orleans_storage
(
    service_id          varchar(150)  NOT NULL,
    grain_type          varchar(512)  NOT NULL,
    grain_id_n0         bigint        NOT NULL,
    grain_id_n1         bigint        NOT NULL,
    grain_id_extension  varchar(512)  NOT NULL,
    grain_type_hash     integer       NOT NULL,
    grain_id_hash       integer       NOT NULL,
    payload             bytea         NULL,
    version             integer       NOT NULL,
    modified_at         timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT pk_orleans_storage PRIMARY KEY (service_id, grain_type, grain_id_n0, grain_id_n1, grain_id_extension)
);

INSERT INTO orleansquery (querykey, querytext) VALUES

-- The state and its version; no row when the grain was never written.
('ReadFromStorageKey', '
SELECT payload AS PayloadBinary, version AS Version
FROM orleans_storage
WHERE service_id = @ServiceId AND grain_type = @GrainTypeString
  AND grain_id_n0 = @GrainIdN0 AND grain_id_n1 = @GrainIdN1
  AND grain_id_extension = coalesce(@GrainIdExtensionString, '''');'),

-- Writes the state: an update guarded by @GrainStateVersion, or the first insert when it is NULL.
-- Returns NewGrainStateVersion, or no row on a version conflict.
('WriteToStorageKey', '
WITH changed AS (
    UPDATE orleans_storage
    SET payload = @PayloadBinary, version = version + 1, modified_at = now(),
        grain_type_hash = @GrainTypeHash, grain_id_hash = @GrainIdHash
    WHERE @GrainStateVersion IS NOT NULL AND version = @GrainStateVersion
      AND service_id = @ServiceId AND grain_type = @GrainTypeString
      AND grain_id_n0 = @GrainIdN0 AND grain_id_n1 = @GrainIdN1
      AND grain_id_extension = coalesce(@GrainIdExtensionString, '''')
    RETURNING version),
created AS (
    INSERT INTO orleans_storage
        (service_id, grain_type, grain_id_n0, grain_id_n1, grain_id_extension,
         grain_type_hash, grain_id_hash, payload, version)
    SELECT @ServiceId, @GrainTypeString, @GrainIdN0, @GrainIdN1, coalesce(@GrainIdExtensionString, ''''),
           @GrainTypeHash, @GrainIdHash, @PayloadBinary, 1
    WHERE @GrainStateVersion IS NULL
    ON CONFLICT ON CONSTRAINT pk_orleans_storage DO NOTHING
    RETURNING version)
SELECT version AS NewGrainStateVersion FROM changed
UNION ALL
SELECT version FROM created;'),

-- Clears the state but keeps the row and its version sequence, so a stale writer still conflicts after
-- a clear. Same version rule and result as WriteToStorageKey.
('ClearStorageKey', '
WITH changed AS (
    UPDATE orleans_storage
    SET payload = NULL, version = version + 1, modified_at = now()
    WHERE @GrainStateVersion IS NOT NULL AND version = @GrainStateVersion
      AND service_id = @ServiceId AND grain_type = @GrainTypeString
      AND grain_id_n0 = @GrainIdN0 AND grain_id_n1 = @GrainIdN1
      AND grain_id_extension = coalesce(@GrainIdExtensionString, '''')
    RETURNING version),
created AS (
    INSERT INTO orleans_storage
        (service_id, grain_type, grain_id_n0, grain_id_n1, grain_id_extension,
         grain_type_hash, grain_id_hash, payload, version)
    SELECT @ServiceId, @GrainTypeString, @GrainIdN0, @GrainIdN1, coalesce(@GrainIdExtensionString, ''''),
           @GrainTypeHash, @GrainIdHash, NULL, 1
    WHERE @GrainStateVersion IS NULL
    ON CONFLICT ON CONSTRAINT pk_orleans_storage DO NOTHING
    RETURNING version)
SELECT version FROM changed
UNION ALL
SELECT version FROM created;'),

-- Deletes the row (AdoNetGrainStorageOptions.DeleteStateOnClear) if its version is @GrainStateVersion.
-- Returns a value that differs from the grain's ETag on success, no row on a conflict.
('DeleteStorageKey', '
DELETE FROM orleans_storage
WHERE @GrainStateVersion IS NOT NULL AND version = @GrainStateVersion
  AND service_id = @ServiceId AND grain_type = @GrainTypeString
  AND grain_id_n0 = @GrainIdN0 AND grain_id_n1 = @GrainIdN1
  AND grain_id_extension = coalesce(@GrainIdExtensionString, '''')
RETURNING version + 1;')

ON CONFLICT (querykey) DO UPDATE SET querytext = EXCLUDED.querytext;
