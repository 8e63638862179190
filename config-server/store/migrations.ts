/**
 * Schema history, oldest first. Never edit or reorder a released step: add a new one. Each
 * migration runs in one transaction together with its schema_migrations row.
 */
export interface Migration {
  version: number;
  name: string;
  steps: readonly string[];
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: "initial-schema",
    steps: [
      `CREATE TABLE settings (
         key TEXT PRIMARY KEY,
         value TEXT NOT NULL,
         updated_at INTEGER NOT NULL
       ) STRICT`,
      `CREATE TABLE components (
         component_id TEXT PRIMARY KEY,
         role INTEGER NOT NULL,
         name TEXT NOT NULL,
         address TEXT NOT NULL,
         location INTEGER NOT NULL,
         version TEXT NOT NULL,
         credential_hash TEXT NOT NULL,
         health INTEGER NOT NULL,
         issues_json TEXT NOT NULL,
         pending_bytes INTEGER NOT NULL DEFAULT 0,
         last_heartbeat INTEGER,
         registered_at INTEGER NOT NULL,
         UNIQUE (role, name)
       ) STRICT`,
      `CREATE TABLE policies (
         name TEXT PRIMARY KEY,
         rpo_threshold_seconds INTEGER NOT NULL,
         retention_seconds INTEGER NOT NULL,
         crash_consistent_frequency_seconds INTEGER NOT NULL,
         app_consistent_frequency_seconds INTEGER NOT NULL,
         resync_schedule TEXT NOT NULL,
         failback INTEGER NOT NULL DEFAULT 0,
         -- 1 while a built-in still carries the seeded values (re-seeded on open)
         builtin INTEGER NOT NULL DEFAULT 0
       ) STRICT`,
      `CREATE TABLE machines (
         machine_id TEXT PRIMARY KEY,
         name TEXT NOT NULL UNIQUE,
         agent_component_id TEXT REFERENCES components (component_id) ON DELETE SET NULL,
         process_server_id TEXT REFERENCES components (component_id) ON DELETE SET NULL,
         policy_name TEXT REFERENCES policies (name),
         state INTEGER NOT NULL,
         health INTEGER NOT NULL,
         issues_json TEXT NOT NULL,
         direction INTEGER NOT NULL,
         resync_required INTEGER NOT NULL DEFAULT 0,
         resync_reason TEXT NOT NULL DEFAULT '',
         stats_json TEXT,
         test_failover_active INTEGER NOT NULL DEFAULT 0,
         created_at INTEGER NOT NULL
       ) STRICT`,
      `CREATE INDEX machines_by_process_server ON machines (process_server_id)`,
      `CREATE TABLE disks (
         machine_id TEXT NOT NULL REFERENCES machines (machine_id) ON DELETE CASCADE,
         -- 'source': the protected disk; 'azure': the failed-over copy
         kind TEXT NOT NULL CHECK (kind IN ('source', 'azure')),
         disk_id TEXT NOT NULL,
         disk_index INTEGER NOT NULL,
         size_bytes INTEGER NOT NULL,
         image_path TEXT NOT NULL,
         nbd_uri TEXT NOT NULL,
         nbd_unix_uri TEXT NOT NULL,
         added_at_sequence INTEGER NOT NULL,
         PRIMARY KEY (machine_id, kind, disk_id),
         UNIQUE (machine_id, kind, disk_index)
       ) STRICT`,
      `CREATE TABLE jobs (
         job_id TEXT PRIMARY KEY,
         type TEXT NOT NULL,
         machine_id TEXT REFERENCES machines (machine_id) ON DELETE SET NULL,
         state INTEGER NOT NULL,
         progress_percent REAL NOT NULL DEFAULT 0,
         start_time INTEGER,
         end_time INTEGER,
         error TEXT NOT NULL DEFAULT '',
         bytes_sent INTEGER NOT NULL DEFAULT 0,
         result_json TEXT NOT NULL DEFAULT '',
         created_at INTEGER NOT NULL
       ) STRICT`,
      `CREATE INDEX jobs_by_machine ON jobs (machine_id, created_at)`,
      `CREATE INDEX jobs_by_state ON jobs (state)`,
      `CREATE TABLE job_steps (
         job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
         ordinal INTEGER NOT NULL,
         name TEXT NOT NULL,
         state INTEGER NOT NULL,
         progress_percent REAL NOT NULL DEFAULT 0,
         start_time INTEGER,
         end_time INTEGER,
         message TEXT NOT NULL DEFAULT '',
         PRIMARY KEY (job_id, ordinal),
         UNIQUE (job_id, name)
       ) STRICT`,
      `CREATE TABLE recovery_points (
         recovery_point_id TEXT PRIMARY KEY,
         machine_id TEXT NOT NULL REFERENCES machines (machine_id) ON DELETE CASCADE,
         time INTEGER NOT NULL,
         sequence INTEGER NOT NULL,
         type INTEGER NOT NULL,
         tag_name TEXT NOT NULL,
         disks_covered INTEGER NOT NULL,
         disks_total INTEGER NOT NULL,
         processed INTEGER NOT NULL DEFAULT 0,
         consistency_group TEXT NOT NULL DEFAULT ''
       ) STRICT`,
      `CREATE INDEX recovery_points_by_machine ON recovery_points (machine_id, sequence)`,
      `CREATE TABLE commands (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         command_id TEXT NOT NULL UNIQUE,
         component_id TEXT NOT NULL REFERENCES components (component_id) ON DELETE CASCADE,
         job_id TEXT REFERENCES jobs (job_id) ON DELETE SET NULL,
         payload_json TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         completed_at INTEGER,
         success INTEGER,
         error TEXT NOT NULL DEFAULT '',
         result_json TEXT NOT NULL DEFAULT ''
       ) STRICT`,
      `CREATE INDEX commands_pending ON commands (component_id, completed_at, seq)`,
    ],
  },
  {
    version: 2,
    name: "failover-and-networks",
    steps: [
      `ALTER TABLE disks ADD COLUMN blob_name TEXT NOT NULL DEFAULT ''`,
      `ALTER TABLE machines ADD COLUMN network_mapping_json TEXT`,
      `ALTER TABLE machines ADD COLUMN failover_json TEXT`,
      `ALTER TABLE machines ADD COLUMN test_failover_json TEXT`,
      `CREATE TABLE networks (
         name TEXT PRIMARY KEY,
         network_json TEXT NOT NULL,
         created_at INTEGER NOT NULL
       ) STRICT`,
    ],
  },
  {
    version: 3,
    name: "azure-agent",
    steps: [
      `ALTER TABLE machines ADD COLUMN azure_agent_component_id TEXT`,
      `ALTER TABLE machines ADD COLUMN forward_process_server_id TEXT`,
    ],
  },
  {
    version: 4,
    name: "proofs-groups-plans",
    steps: [
      // A source disk's fingerprint at one sequence (docs/fingerprint.md), with one level of its
      // hash tree so a mismatch can be named by offset range.
      `CREATE TABLE disk_proofs (
         machine_id TEXT NOT NULL,
         sequence INTEGER NOT NULL,
         disk_index INTEGER NOT NULL,
         size_bytes INTEGER NOT NULL,
         page_size INTEGER NOT NULL,
         fingerprint TEXT NOT NULL,
         summary BLOB NOT NULL,
         taken_at INTEGER NOT NULL,
         PRIMARY KEY (machine_id, sequence, disk_index)
       ) STRICT`,
      `CREATE TABLE replication_groups (
         name TEXT PRIMARY KEY,
         machines_json TEXT NOT NULL,
         created_at INTEGER NOT NULL
       ) STRICT`,
      // A committed multi-machine point: every member's tag was inserted while all held writes.
      `CREATE TABLE group_points (
         group_point_id TEXT PRIMARY KEY,
         group_name TEXT NOT NULL,
         tag_name TEXT NOT NULL,
         app_consistent INTEGER NOT NULL,
         members_json TEXT NOT NULL,
         hold_ms REAL NOT NULL,
         created_at INTEGER NOT NULL
       ) STRICT`,
      `CREATE INDEX group_points_by_group ON group_points (group_name, created_at)`,
      `CREATE TABLE plans (
         name TEXT PRIMARY KEY,
         source TEXT NOT NULL,
         spec_json TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         updated_at INTEGER NOT NULL
       ) STRICT`,
      // A plan run is a job (steps, states, times); this row says which plan and how.
      `CREATE TABLE plan_runs (
         job_id TEXT PRIMARY KEY REFERENCES jobs (job_id) ON DELETE CASCADE,
         plan_name TEXT NOT NULL,
         operation TEXT NOT NULL,
         options_json TEXT NOT NULL,
         created_at INTEGER NOT NULL
       ) STRICT`,
      `CREATE TABLE plan_schedules (
         plan_name TEXT PRIMARY KEY,
         cron TEXT NOT NULL,
         cycle TEXT NOT NULL,
         created_at INTEGER NOT NULL
       ) STRICT`,
      // Plan runs place steps in a group and on a machine, and keep an action's output.
      `ALTER TABLE job_steps ADD COLUMN group_name TEXT NOT NULL DEFAULT ''`,
      `ALTER TABLE job_steps ADD COLUMN machine TEXT NOT NULL DEFAULT ''`,
      `ALTER TABLE job_steps ADD COLUMN output TEXT NOT NULL DEFAULT ''`,
    ],
  },
  {
    version: 5,
    name: "rehearsal-schedules",
    // A scheduled rehearsal's network, workload and approval, as given to srlab plan schedule.
    steps: [`ALTER TABLE plan_schedules ADD COLUMN options_json TEXT NOT NULL DEFAULT '{}'`],
  },
  {
    version: 6,
    name: "signed-credentials-and-join-tokens",
    steps: [
      // Every credential the configuration server signed, so it can list and revoke them.
      `CREATE TABLE credentials (
         credential_id TEXT PRIMARY KEY,
         role TEXT NOT NULL,
         subject TEXT NOT NULL,
         -- the component it was issued to; NULL for the admin
         component_id TEXT,
         issued_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL,
         revoked_at INTEGER,
         revoked_reason TEXT NOT NULL DEFAULT ''
       ) STRICT`,
      `CREATE INDEX credentials_by_component ON credentials (component_id)`,
      `CREATE INDEX credentials_revoked ON credentials (revoked_at, expires_at)`,
      // Only the SHA-256 of a token's secret is kept.
      `CREATE TABLE join_tokens (
         token_id TEXT PRIMARY KEY,
         secret_hash TEXT NOT NULL,
         role TEXT NOT NULL,
         description TEXT NOT NULL DEFAULT '',
         single_use INTEGER NOT NULL,
         uses INTEGER NOT NULL DEFAULT 0,
         created_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL,
         revoked_at INTEGER
       ) STRICT`,
    ],
  },
  {
    version: 7,
    name: "point-capture-mode-and-direction",
    steps: [
      `ALTER TABLE recovery_points ADD COLUMN metadata_mode INTEGER NOT NULL DEFAULT 0`,
      `ALTER TABLE recovery_points ADD COLUMN direction INTEGER NOT NULL DEFAULT 0`,
    ],
  },
  {
    version: 8,
    name: "job-reports",
    steps: [
      // Report files kept with a job (a load test's or rehearsal's report.html), served by the dashboard.
      `CREATE TABLE job_reports (
         job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
         name TEXT NOT NULL,
         content BLOB NOT NULL,
         created_at INTEGER NOT NULL,
         PRIMARY KEY (job_id, name)
       ) STRICT`,
    ],
  },
  {
    version: 9,
    name: "component-host-and-metrics",
    steps: [
      // Where a component runs (its own host name) and its /metrics address, for status and Prometheus.
      `ALTER TABLE components ADD COLUMN host_name TEXT NOT NULL DEFAULT ''`,
      `ALTER TABLE components ADD COLUMN metrics_address TEXT NOT NULL DEFAULT ''`,
    ],
  },
  {
    version: 10,
    name: "typed-command-results",
    steps: [
      // A command's result is a CommandResult (canonical JSON), no longer free-form JSON.
      `ALTER TABLE commands RENAME COLUMN result_json TO result`,
      // An older result was the bare object of its command's kind: wrapped in that kind (the
      // payload's one key besides commandId and jobId) it reads back as the typed result.
      `UPDATE commands
         SET result = json_object(
           (SELECT key FROM json_each(commands.payload_json) WHERE key NOT IN ('commandId', 'jobId') LIMIT 1),
           json(result))
       WHERE result <> '' AND json_valid(result) AND json_type(result) = 'object'
         AND json_valid(payload_json)
         AND (SELECT count(*) FROM json_each(commands.payload_json) WHERE key NOT IN ('commandId', 'jobId')) = 1`,
    ],
  },
];
