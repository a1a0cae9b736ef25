// The journal's schema: the contract users query with `sqlite3`. Columns are added, never renamed.

export const kSchemaVersion = 3

export const kSchema = `
CREATE TABLE IF NOT EXISTS messages (
  id          INTEGER PRIMARY KEY,          -- arrival order
  received_at INTEGER NOT NULL,             -- unix ms, when Spillway read it
  ts          INTEGER,                      -- unix ms, the message's own time; NULL if it has none
  facility    INTEGER,
  severity    INTEGER,                      -- 0 emerg .. 7 debug
  host        TEXT,
  app         TEXT,
  procid      TEXT,
  msgid       TEXT,
  sd          TEXT,                         -- RFC 5424 structured data as JSON
  msg         TEXT NOT NULL,
  peer        TEXT NOT NULL,                -- sender address:port
  transport   TEXT NOT NULL,                -- tcp | udp
  orig_len    INTEGER,                      -- original size in bytes when cut to limits.maxMessageBytes
  parse_error INTEGER NOT NULL DEFAULT 0,   -- 1: no grammar fits; msg holds the whole frame
  edge        TEXT                          -- the edge that forwarded it (spillway consume); NULL: received here
);
CREATE INDEX IF NOT EXISTS messages_received_at ON messages (received_at);
CREATE INDEX IF NOT EXISTS messages_host ON messages (host, received_at);
CREATE INDEX IF NOT EXISTS messages_app ON messages (app, received_at);
-- Partial: a journal that only receives directly (edge always NULL) pays nothing for it.
CREATE INDEX IF NOT EXISTS messages_edge ON messages (edge, received_at) WHERE edge IS NOT NULL;
-- Partial: holds only the rare rows with parse errors, so it costs nothing on ordinary inserts.
CREATE INDEX IF NOT EXISTS messages_parse_error ON messages (id) WHERE parse_error = 1;

-- Central journals (spillway consume): where each edge's spool has been journaled up to, and how far
-- the stream has been read, both committed in the same transaction as the rows they produced.
CREATE TABLE IF NOT EXISTS edge_cursor (
  instance   TEXT PRIMARY KEY,             -- the edge's spool identity (spool/forward.state)
  edge       TEXT NOT NULL,                -- its name (forward.nats.edge)
  segment    INTEGER NOT NULL,             -- every record of the instance before (segment, offset) is here
  offset     INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS consume_cursor (
  stream     TEXT NOT NULL,
  durable    TEXT NOT NULL,
  stream_seq INTEGER NOT NULL,             -- every message of the stream up to here is journaled
  PRIMARY KEY (stream, durable)
);

-- Replay position in the spool, committed in the same transaction as the rows it produced.
CREATE TABLE IF NOT EXISTS spool_cursor (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  segment INTEGER NOT NULL,
  offset  INTEGER NOT NULL
);
INSERT OR IGNORE INTO spool_cursor (id, segment, offset) VALUES (1, 0, 0);

-- Memory batches a stop wrote to the spool (spool/memory-<ms>.spool) because the journal could not
-- commit them in time: how far each file is journaled, committed with its rows; the row goes with the file.
CREATE TABLE IF NOT EXISTS spool_memory_cursor (
  file    TEXT PRIMARY KEY,
  offset  INTEGER NOT NULL
);

-- One row per sender (its host, or its address when it names none), kept by the journal worker.
CREATE TABLE IF NOT EXISTS sender_stats (
  sender              TEXT PRIMARY KEY,
  peer                TEXT NOT NULL,          -- the address:port it last sent from
  first_seen          INTEGER NOT NULL,       -- unix ms
  last_seen           INTEGER NOT NULL,
  messages            INTEGER NOT NULL,
  worst_severity_hour INTEGER NOT NULL,       -- worst severity in the hour of last_seen
  hour                INTEGER NOT NULL        -- that hour, as unix ms / 3600000
);

DROP VIEW IF EXISTS senders;
CREATE VIEW senders AS
SELECT
  sender,
  peer,
  strftime('%Y-%m-%dT%H:%M:%fZ', first_seen / 1000.0, 'unixepoch') AS first_seen,
  strftime('%Y-%m-%dT%H:%M:%fZ', last_seen / 1000.0, 'unixepoch') AS last_seen,
  messages,
  CASE worst_severity_hour
    WHEN 0 THEN 'emerg' WHEN 1 THEN 'alert' WHEN 2 THEN 'crit' WHEN 3 THEN 'err'
    WHEN 4 THEN 'warning' WHEN 5 THEN 'notice' WHEN 6 THEN 'info' WHEN 7 THEN 'debug'
  END AS worst_recent_severity,
  CAST(((julianday('now') - 2440587.5) * 86400000 - last_seen) / 1000 AS INTEGER) AS silent_seconds
FROM sender_stats;

-- Messages per minute of received_at and severity (-1: none), kept by the journal worker in the
-- transaction of the rows (journal/volume.ts); the console's histograms read it instead of counting
-- rows. It counts the rows received from volume_state.since on: a journal from an earlier version has
-- its older rows counted row by row.
CREATE TABLE IF NOT EXISTS volume (
  minute   INTEGER NOT NULL,
  severity INTEGER NOT NULL,
  n        INTEGER NOT NULL,
  PRIMARY KEY (minute, severity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS volume_state (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  since INTEGER NOT NULL                      -- unix ms: every row received from then on is counted
);
INSERT OR IGNORE INTO volume_state (id, since) VALUES (1, CAST(strftime('%s', 'now') AS INTEGER) * 1000);
-- Retention and manual deletes take their rows out. Fires on DELETE only.
CREATE TRIGGER IF NOT EXISTS messages_volume_delete AFTER DELETE ON messages
BEGIN
  UPDATE volume SET n = n - 1 WHERE minute = old.received_at / 60000 AND severity = coalesce(old.severity, -1);
END;

-- The server's counters, refreshed every few seconds and at stop.
CREATE TABLE IF NOT EXISTS stats (
  name       TEXT PRIMARY KEY,
  value      NOT NULL,     -- integer counters, or a real for gauges such as delays
  updated_at INTEGER NOT NULL
);

-- Views hold no data: recreated at every start, so they follow the code.
DROP VIEW IF EXISTS log;
CREATE VIEW log AS
SELECT
  m.id,
  strftime('%Y-%m-%dT%H:%M:%fZ', m.received_at / 1000.0, 'unixepoch') AS received,
  m.received_at,
  strftime('%Y-%m-%dT%H:%M:%fZ', m.ts / 1000.0, 'unixepoch') AS time,
  m.host,
  m.app,
  m.procid,
  CASE m.severity
    WHEN 0 THEN 'emerg' WHEN 1 THEN 'alert' WHEN 2 THEN 'crit' WHEN 3 THEN 'err'
    WHEN 4 THEN 'warning' WHEN 5 THEN 'notice' WHEN 6 THEN 'info' WHEN 7 THEN 'debug'
  END AS severity,
  m.severity AS level,
  CASE m.facility
    WHEN 0 THEN 'kern' WHEN 1 THEN 'user' WHEN 2 THEN 'mail' WHEN 3 THEN 'daemon' WHEN 4 THEN 'auth'
    WHEN 5 THEN 'syslog' WHEN 6 THEN 'lpr' WHEN 7 THEN 'news' WHEN 8 THEN 'uucp' WHEN 9 THEN 'cron'
    WHEN 10 THEN 'authpriv' WHEN 11 THEN 'ftp' WHEN 12 THEN 'ntp' WHEN 13 THEN 'security'
    WHEN 14 THEN 'console' WHEN 15 THEN 'solaris-cron' WHEN 16 THEN 'local0' WHEN 17 THEN 'local1'
    WHEN 18 THEN 'local2' WHEN 19 THEN 'local3' WHEN 20 THEN 'local4' WHEN 21 THEN 'local5'
    WHEN 22 THEN 'local6' WHEN 23 THEN 'local7'
  END AS facility,
  m.msgid,
  m.sd,
  m.msg,
  m.peer,
  m.transport,
  m.orig_len,
  m.parse_error,
  m.edge
FROM messages AS m;
`

// Full-text search over msg (journal.fullText). External content: the text is stored once, in
// messages; the index is filled behind the journal by journal/fts.ts, up to fts_state.indexed_to.
// Trigrams, so the index answers substring searches (`msg LIKE '%text%'`), the one meaning text search
// has (journal/search.ts); detail = none keeps it about the size of a word index (no positions: FTS5
// MATCH with phrases is not available on it, LIKE is).
export const kFullTextSchema = `
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5 (
  msg, content = 'messages', content_rowid = 'id', tokenize = 'trigram', detail = 'none'
);
CREATE TABLE IF NOT EXISTS fts_state (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  indexed_to INTEGER NOT NULL                 -- every row with id <= this is in messages_fts
);
INSERT OR IGNORE INTO fts_state (id, indexed_to) VALUES (1, 0);
-- Retention and manual deletes: an indexed row leaves the index with its row. Fires on DELETE only.
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages
WHEN old.id <= (SELECT indexed_to FROM fts_state WHERE id = 1)
BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, msg) VALUES ('delete', old.id, old.msg);
END;
`

// A journal whose index is of words (before trigrams): dropped, and rebuilt from the first row by the
// indexer in idle time. Searches scan until it has caught up, with the same results.
export const kDropWordIndex = `
DROP TRIGGER IF EXISTS messages_fts_delete;
DROP TABLE messages_fts;
UPDATE fts_state SET indexed_to = 0 WHERE id = 1;
`

// Journals of schema version 1 lack messages.edge; the worker runs this before kSchema (whose views
// name the column) when it is missing. A column added by ALTER costs nothing in existing rows.
export const kAddEdgeColumn = 'ALTER TABLE messages ADD COLUMN edge TEXT'
