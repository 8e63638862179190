import type Database from "better-sqlite3";

/** Free-form key/value settings (passphrase hash, keys, deployment options). */
export class SettingsTable {
  private readonly select;
  private readonly upsert;
  private readonly remove;

  constructor(db: Database.Database) {
    this.select = db.prepare<[string], { value: string }>("SELECT value FROM settings WHERE key = ?");
    this.upsert = db.prepare<[string, string, number]>(
      `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    );
    this.remove = db.prepare<[string]>("DELETE FROM settings WHERE key = ?");
  }

  get(key: string): string | undefined {
    return this.select.get(key)?.value;
  }

  set(key: string, value: string): void {
    this.upsert.run(key, value, Date.now());
  }

  delete(key: string): boolean {
    return this.remove.run(key).changes > 0;
  }
}
