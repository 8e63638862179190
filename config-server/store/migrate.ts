import type Database from "better-sqlite3";
import { type Migration, migrations as releasedMigrations } from "./migrations.js";
import { SchemaVersionError } from "./store-error.js";

export interface MigrationResult {
  from: number;
  to: number;
  applied: number[];
}

/**
 * Bring the schema up to the newest migration. Safe to call on every open: applied versions
 * are recorded in schema_migrations and skipped. A database that is ahead of this code (or
 * whose history differs from it) is refused rather than silently misread.
 */
export function migrate(
  db: Database.Database,
  list: readonly Migration[] = releasedMigrations,
): MigrationResult {
  assertOrdered(list);
  const latest = list.length === 0 ? 0 : list[list.length - 1].version;
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const applied = db
    .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
    .all() as { version: number; name: string }[];
  const current = applied.length === 0 ? 0 : applied[applied.length - 1].version;
  if (current > latest) {
    throw new SchemaVersionError(
      `database schema version ${current} is newer than this srlab build supports (${latest}); ` +
        "run a newer srlab against it, or restore a backup taken before the upgrade",
      current,
      latest,
    );
  }
  const known = new Map(list.map((m) => [m.version, m.name]));
  for (const row of applied) {
    if (known.get(row.version) !== row.name) {
      throw new SchemaVersionError(
        `database migration ${row.version} is "${row.name}" but this srlab build expects ` +
          `"${known.get(row.version) ?? "(none)"}"; the database comes from a different build`,
        current,
        latest,
      );
    }
  }
  const record = db.prepare(
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
  );
  const done: number[] = [];
  for (const m of list) {
    if (m.version <= current) continue;
    db.transaction(() => {
      for (const step of m.steps) db.exec(step);
      record.run(m.version, m.name, Date.now());
    })();
    done.push(m.version);
  }
  // Mirror for tools that only look at the header (sqlite3 CLI, DB browsers).
  if (done.length > 0) db.pragma(`user_version = ${latest}`);
  return { from: current, to: Math.max(current, latest), applied: done };
}

function assertOrdered(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration list is broken: entry ${i} has version ${m.version}, expected ${i + 1}`);
    }
  });
}
