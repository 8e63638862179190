import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test as base } from "vitest";
import type { LocalMachine, ReplicationClient } from "../../mobility-agent/index.js";
import { FakeProcessServer, replicationFor } from "./fake-process-server.js";
import { StubConfigServer } from "./stub-config-server.js";

/** What a replication test drives: the in-memory process server and the agent's client on it. */
export interface FakeReplication {
  ps: FakeProcessServer;
  replication: ReplicationClient;
}

export interface UnitFixtures {
  /** Makes a fresh directory; every directory made is removed when the test ends. */
  tempDir: () => string;
  /**
   * A started configuration-server stub whose registration hands out directory storage in a
   * fresh directory; stopped when the test ends.
   */
  stubConfigServer: StubConfigServer;
  /**
   * Replicates `machine` to a fake process server holding replicas of these sizes (or copies of
   * these images); clients still running when the test ends are stopped.
   */
  fakeProcessServer: (
    machine: LocalMachine,
    replicas: Array<number | Buffer>,
    options?: { bitmapAfterRetries?: number },
  ) => FakeReplication;
}

/** A readable directory prefix from the test's name, so a leftover directory says whose it is. */
function prefixOf(name: string): string {
  return `srlab-${name.toLowerCase().replace(/[^a-z0-9]+/g, "-").slice(0, 40)}-`;
}

/** `test` with the shared unit fixtures; each fixture is set up only for tests that name it. */
export const test = base.extend<UnitFixtures>({
  tempDir: async ({ task }, use) => {
    const made: string[] = [];
    await use(() => {
      const dir = mkdtempSync(join(tmpdir(), prefixOf(task.name)));
      made.push(dir);
      return dir;
    });
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  },
  stubConfigServer: async ({ tempDir }, use) => {
    const cs = new StubConfigServer(tempDir());
    await cs.start();
    try {
      await use(cs);
    } finally {
      await cs.stop();
    }
  },
  fakeProcessServer: async ({ task: _task }, use) => {
    const running: ReplicationClient[] = [];
    await use((machine, replicas, options) => {
      const ps = new FakeProcessServer(replicas);
      const replication = replicationFor(machine, ps, options);
      running.push(replication);
      return { ps, replication };
    });
    for (const r of running) await r.stop();
  },
});
