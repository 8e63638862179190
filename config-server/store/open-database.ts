import Database from "better-sqlite3";

export type SynchronousMode = "FULL" | "NORMAL";

/**
 * Opens the file with the connection settings the store relies on. WAL lets readers (CLI,
 * metrics) run while the daemon writes. The default synchronous=FULL fsyncs the WAL on every
 * commit: the CS acknowledges registrations, command results and recovery points to remote
 * components that then forget them, and §3 forbids losing acknowledged data, so a power cut
 * must not roll those back. NORMAL (durable across process crashes, not power loss) is
 * available for benchmarks.
 */
export function openDatabase(path: string, synchronous: SynchronousMode): Database.Database {
  const db = new Database(path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma("foreign_keys = ON");
    // Another process (the CLI) may hold the write lock briefly.
    db.pragma("busy_timeout = 5000");
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}
