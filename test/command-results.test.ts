import Database from "better-sqlite3";
import { describe, expect, test } from "vitest";
import { ErrorCode } from "../common/errors/index.js";
import { silentLogger } from "../common/logger.js";
import { CommandBus } from "../config-server/command-bus.js";
import { ConfigStore, migrations } from "../config-server/store/index.js";
import { migrate } from "../config-server/store/migrate.js";
import { type CommandResult, ComponentRole, WatchCommandsResponse } from "../proto/index.js";
import { assertSrlabError, registerAgent, storePaths, withStore } from "./support/config-store.js";

const freshPath = storePaths();

type Body = NonNullable<WatchCommandsResponse["command"]>;
const payload = (command: Body) => WatchCommandsResponse.toJSON({ commandId: "", jobId: "", command }) as object;

const STOP_WRITES: Body = { $case: "stopWrites", value: { machineId: "m", drain: true } };
const stopped: CommandResult = {
  kind: {
    $case: "stopWrites",
    value: {
      lastSequence: 42,
      drained: true,
      proofs: [{ index: 0, sizeBytes: 1 << 20, pageSize: 4096, fingerprint: "f00d", summary: Buffer.from([1, 2, 3, 250]) }],
    },
  },
};
const synced: CommandResult = {
  kind: { $case: "startSync", value: { endSequence: 9, blocksCompared: 1, blocksSent: 1, zeroBlocksSent: 0, rangesSent: 1, bytesSent: 4096 } },
};

describe("command results", () => {
  test("a command is completed only with a result of its own kind, and reads back typed", () => {
    withStore(freshPath(), (s) => {
      const agent = registerAgent(s, "vm");
      const id = s.enqueueCommand(agent.componentId, "", payload(STOP_WRITES));
      // A sync's counts do not answer a stop of writes: refused, and nothing is recorded.
      assertSrlabError(() => s.completeCommand(id, { success: true, result: synced }), ErrorCode.INVALID_ARGUMENT, /is stopWrites: its result is of kind stopWrites, not startSync/);
      expect(s.pendingCommands(agent.componentId).map((c) => c.commandId)).toEqual([id]);
      expect(s.getCommand(id)?.completedAt).toBeUndefined();

      const done = s.completeCommand(id, { success: true, result: stopped });
      expect(done.result).toEqual(stopped);
      // The proofs' summaries come back byte for byte.
      const value = done.result?.kind?.$case === "stopWrites" ? done.result.kind.value : undefined;
      expect(Buffer.from(value!.proofs[0]!.summary)).toEqual(Buffer.from([1, 2, 3, 250]));

      // A failure carries no result; an empty result is no result.
      const failed = s.enqueueCommand(agent.componentId, "", payload(STOP_WRITES));
      expect(s.completeCommand(failed, { success: false, error: "disk gone", result: { kind: undefined } }).result).toBeUndefined();
    });
  });

  test("the bus hands the waiter the typed result, and a result of another kind reaches nobody", async () => {
    const store = ConfigStore.open(freshPath());
    try {
      const agent = registerAgent(store, "vm");
      const bus = new CommandBus(store, silentLogger());
      let answered = false;
      const outcome = bus.send(agent.componentId, "", STOP_WRITES).then((o) => {
        answered = true;
        return o;
      });
      const [pending] = store.pendingCommands(agent.componentId);
      expect(() => bus.complete(pending!.commandId, true, "", synced)).toThrow(/is stopWrites: its result is of kind stopWrites, not startSync/);
      await new Promise((r) => setImmediate(r));
      expect(answered).toBe(false);
      bus.complete(pending!.commandId, true, "", stopped);
      expect(await outcome).toEqual({ success: true, error: "", result: stopped });
    } finally {
      store.close();
    }
  });

  test("results stored before migration 10 (free-form JSON) read back as typed results", () => {
    const path = freshPath();
    const db = new Database(path);
    migrate(
      db,
      migrations.filter((m) => m.version <= 9),
    );
    db.prepare(
      `INSERT INTO components (component_id, role, name, address, location, version, credential_hash, health, issues_json, registered_at)
       VALUES ('agent-1', ?, 'vm', 'vm:9500', 1, '1.0.0', 'h', 1, '[]', 0)`,
    ).run(ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT);
    const insert = db.prepare(
      `INSERT INTO commands (command_id, component_id, payload_json, created_at, completed_at, success, error, result_json)
       VALUES (?, 'agent-1', ?, 0, 1, ?, ?, ?)`,
    );
    // As agents reported them before results were typed: the bare object, summaries in base64.
    const legacyStop = { lastSequence: 42, drained: true, proofs: [{ index: 0, sizeBytes: 1 << 20, pageSize: 4096, fingerprint: "f00d", summary: "AQID+g==" }] };
    insert.run("c-stop", JSON.stringify(payload(STOP_WRITES)), 1, "", JSON.stringify(legacyStop));
    insert.run("c-renew", JSON.stringify(payload({ $case: "renewCredential", value: { reason: "test" } })), 1, "", '{"credentialId":"cred-9"}');
    insert.run("c-failed", JSON.stringify(payload(STOP_WRITES)), 0, "disk gone", "");
    db.close();

    withStore(path, (s) => {
      expect(s.getCommand("c-stop")?.result).toEqual(stopped);
      expect(s.getCommand("c-renew")?.result).toEqual({ kind: { $case: "renewCredential", value: { credentialId: "cred-9" } } });
      expect(s.getCommand("c-failed")).toMatchObject({ success: false, error: "disk gone", result: undefined });
    });
    const after = new Database(path, { readonly: true });
    try {
      const columns = (after.prepare("PRAGMA table_info(commands)").all() as { name: string }[]).map((c) => c.name);
      expect(columns).toContain("result");
      expect(columns).not.toContain("result_json");
    } finally {
      after.close();
    }
  });
});
