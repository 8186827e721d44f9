-- The durable Orleans stream provider (Streaming/, AddPostgresStreams). Owned by the streaming code;
-- idempotent like every migration. One database serves one Orleans service: rows are keyed by the
-- stream provider's name, not by ServiceId.

-- The queue heads. Every append locks its queue's row for the length of its transaction, so appends
-- to one queue commit in the order of their queue sequence numbers and a receiver that has read up to
-- N never misses a row numbered N or lower that commits later.
CREATE TABLE IF NOT EXISTS cloudedge_stream_queues
(
    provider        text    NOT NULL,
    queue_id        integer NOT NULL,
    last_queue_seq  bigint  NOT NULL,
    CONSTRAINT cloudedge_stream_queues_pk PRIMARY KEY (provider, queue_id)
);

-- The stream heads: the last sequence number ever given to each stream. Kept when retention deletes the
-- events, so numbers are never reused.
CREATE TABLE IF NOT EXISTS cloudedge_stream_heads
(
    provider          text   NOT NULL,
    stream_namespace  text   NOT NULL,
    stream_key        text   NOT NULL,
    last_seq          bigint NOT NULL,
    CONSTRAINT cloudedge_stream_heads_pk PRIMARY KEY (provider, stream_namespace, stream_key)
);

-- Delivered checkpoints: every event of the queue up to delivered_seq reached all its subscribers.
-- A silo that takes the queue over resumes after it; retention never deletes beyond it. Apart from the
-- queue heads so that saving a checkpoint never waits for an append's lock.
CREATE TABLE IF NOT EXISTS cloudedge_stream_checkpoints
(
    provider       text        NOT NULL,
    queue_id       integer     NOT NULL,
    delivered_seq  bigint      NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT cloudedge_stream_checkpoints_pk PRIMARY KEY (provider, queue_id)
);

-- The queue and the event log in one: one row per event.
CREATE TABLE IF NOT EXISTS cloudedge_stream_events
(
    provider          text        NOT NULL,
    queue_id          integer     NOT NULL,
    queue_seq         bigint      NOT NULL,
    stream_namespace  text        NOT NULL,
    stream_key        text        NOT NULL,
    stream_seq        bigint      NOT NULL,
    event_id          uuid        NOT NULL,
    created_at        timestamptz NOT NULL,
    trace_parent      text,
    trace_state       text,
    item_type         text        NOT NULL,
    payload           bytea       NOT NULL,
    request_context   bytea,
    CONSTRAINT cloudedge_stream_events_pk PRIMARY KEY (provider, queue_id, queue_seq)
);

-- IStreamLog reads a stream from a sequence number; unique, so a stream never has two events numbered alike.
CREATE UNIQUE INDEX IF NOT EXISTS cloudedge_stream_events_stream_ix
    ON cloudedge_stream_events (provider, stream_namespace, stream_key, stream_seq);
