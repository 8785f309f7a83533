"""SQLite schema: indexed columns for what queries filter on, plus a JSON document per object."""

from __future__ import annotations

__all__ = ["SCHEMA", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS colonies (name TEXT PRIMARY KEY, colonyid TEXT NOT NULL, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  colonyname TEXT NOT NULL, name TEXT NOT NULL, userid TEXT NOT NULL, doc BLOB NOT NULL,
  PRIMARY KEY (colonyname, name));
CREATE INDEX IF NOT EXISTS users_id ON users (userid);
CREATE TABLE IF NOT EXISTS executors (
  colonyname TEXT NOT NULL, name TEXT NOT NULL, executorid TEXT NOT NULL, executortype TEXT NOT NULL,
  state INTEGER NOT NULL, doc BLOB NOT NULL, PRIMARY KEY (colonyname, name));
CREATE INDEX IF NOT EXISTS executors_id ON executors (executorid);
CREATE TABLE IF NOT EXISTS functions (
  functionid TEXT PRIMARY KEY, colonyname TEXT NOT NULL, executorname TEXT NOT NULL,
  funcname TEXT NOT NULL, doc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS functions_owner ON functions (colonyname, executorname, funcname);
CREATE TABLE IF NOT EXISTS processes (
  processid TEXT PRIMARY KEY, colonyname TEXT NOT NULL, state INTEGER NOT NULL,
  executortype TEXT NOT NULL, prioritytime INTEGER NOT NULL, waitforparents INTEGER NOT NULL,
  targets TEXT, assignedexecutorid TEXT NOT NULL, processgraphid TEXT NOT NULL,
  waitdeadline INTEGER, execdeadline INTEGER, submission INTEGER NOT NULL, starttime INTEGER NOT NULL,
  endtime INTEGER NOT NULL, initiatorname TEXT NOT NULL, label TEXT NOT NULL, doc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS processes_queue
  ON processes (colonyname, executortype, prioritytime) WHERE state = 0 AND waitforparents = 0;
CREATE INDEX IF NOT EXISTS processes_state ON processes (colonyname, state, prioritytime);
CREATE INDEX IF NOT EXISTS processes_ended ON processes (colonyname, state, endtime);
CREATE INDEX IF NOT EXISTS processes_running ON processes (assignedexecutorid) WHERE state = 1;
CREATE INDEX IF NOT EXISTS processes_exec ON processes (execdeadline) WHERE state = 1 AND execdeadline IS NOT NULL;
CREATE INDEX IF NOT EXISTS processes_wait ON processes (waitdeadline) WHERE state = 0 AND waitdeadline IS NOT NULL;
CREATE INDEX IF NOT EXISTS processes_graph ON processes (processgraphid) WHERE processgraphid != '';
CREATE TABLE IF NOT EXISTS attributes (attributeid TEXT PRIMARY KEY, processid TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS attributes_process ON attributes (processid);
CREATE TABLE IF NOT EXISTS processgraphs (
  processgraphid TEXT PRIMARY KEY, colonyname TEXT NOT NULL, state INTEGER NOT NULL,
  submission INTEGER NOT NULL, doc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS processgraphs_colony ON processgraphs (colonyname, state, submission);
CREATE TABLE IF NOT EXISTS logs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, processid TEXT NOT NULL, colonyname TEXT NOT NULL,
  executorname TEXT NOT NULL, message TEXT NOT NULL, timestamp INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS logs_process ON logs (processid, timestamp);
CREATE INDEX IF NOT EXISTS logs_executor ON logs (executorname, timestamp);
CREATE INDEX IF NOT EXISTS logs_colony ON logs (colonyname, timestamp);
CREATE TABLE IF NOT EXISTS files (
  fileid TEXT PRIMARY KEY, colonyname TEXT NOT NULL, label TEXT NOT NULL, name TEXT NOT NULL,
  sequencenr INTEGER NOT NULL, doc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS files_label ON files (colonyname, label, name, sequencenr);
CREATE TABLE IF NOT EXISTS snapshots (
  snapshotid TEXT PRIMARY KEY, colonyname TEXT NOT NULL, name TEXT NOT NULL, added INTEGER NOT NULL,
  doc BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS snapshots_name ON snapshots (colonyname, name);
CREATE TABLE IF NOT EXISTS crons (
  cronid TEXT PRIMARY KEY, colonyname TEXT NOT NULL, name TEXT NOT NULL, doc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS crons_colony ON crons (colonyname);
"""
