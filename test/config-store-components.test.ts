import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { ErrorCode } from "../common/errors/index.js";
import { CaptureMode, ComponentRole, Health, HealthIssueCode, ReplicationDirection, ReplicationState, SiteLocation } from "../proto/index.js";
import { storePaths, withStore, registerPs, registerAgent, disk, assertSrlabError } from "./support/config-store.js";

const freshPath = storePaths();

describe("ConfigStore components", () => {
  test("re-registering the same role and name keeps the id and updates address and version", () => {
    withStore(freshPath(), (s) => {
      const first = registerPs(s, "ps1");
      assert.equal(first.role, ComponentRole.COMPONENT_ROLE_PROCESS_SERVER);
      assert.equal(first.health, Health.HEALTH_NORMAL);
      assert.ok(first.registeredAt instanceof Date);
      const again = s.registerComponent({
        role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
        name: "ps1",
        address: "ps1:9999",
        location: SiteLocation.SITE_LOCATION_ON_PREMISES,
        version: "1.1.0",
        credentialHash: "hash-2",
      });
      assert.equal(again.componentId, first.componentId);
      assert.equal(again.address, "ps1:9999");
      assert.equal(again.version, "1.1.0");
      assert.equal(s.getComponentCredentialHash(first.componentId), "hash-2");
      // Same name, other role: a different component.
      const agent = registerAgent(s, "ps1");
      assert.notEqual(agent.componentId, first.componentId);
      assert.equal(s.findComponentByName(ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, "ps1")?.componentId, agent.componentId);
      assert.equal(s.listComponents().length, 2);
      assert.equal(s.listComponents(ComponentRole.COMPONENT_ROLE_PROCESS_SERVER).length, 1);
    });
  });

  test("a restated transaction commits without its own fsync, then every commit fsyncs again", () => {
    const path = freshPath();
    const at = new Date("2024-05-01T10:00:00Z");
    withStore(path, (s) => {
      const ps = registerPs(s, "ps1");
      assert.equal(s.durability(), "FULL");
      s.restatedTransaction(() => {
        assert.equal(s.durability(), "NORMAL");
        s.recordHeartbeat(ps.componentId, Health.HEALTH_WARNING, [], at);
      });
      assert.equal(s.durability(), "FULL");
      // A failing one rolls back and still leaves commits durable.
      assert.throws(() =>
        s.restatedTransaction(() => {
          s.recordHeartbeat(ps.componentId, Health.HEALTH_CRITICAL, [], new Date());
          throw new Error("report rejected");
        }),
      );
      assert.equal(s.durability(), "FULL");
      assert.equal(s.getComponent(ps.componentId)?.health, Health.HEALTH_WARNING);
      // Inside an ordinary transaction it joins it, durable as that one is.
      s.transaction(() => s.restatedTransaction(() => assert.equal(s.durability(), "FULL")));
    });
    // Committed: the heartbeat is there after the store is reopened.
    withStore(path, (s) => {
      const ps = s.findComponentByName(ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, "ps1");
      assert.equal(ps?.health, Health.HEALTH_WARNING);
      assert.equal(ps?.lastHeartbeat?.getTime(), at.getTime());
    });
    // A store opened with NORMAL for a benchmark stays NORMAL.
    withStore(path, (s) => {
      s.restatedTransaction(() => {});
      assert.equal(s.durability(), "NORMAL");
    }, { synchronous: "NORMAL" });
  });

  test("heartbeat records health, issues and time", () => {
    withStore(freshPath(), (s) => {
      const ps = registerPs(s, "ps1");
      const at = new Date("2024-05-01T10:00:00Z");
      const issues = [{ health: Health.HEALTH_WARNING, code: HealthIssueCode.HEALTH_ISSUE_CODE_CACHE_FREE_SPACE_LOW, message: "28% free" }];
      const c = s.recordHeartbeat(ps.componentId, Health.HEALTH_WARNING, issues, at);
      assert.equal(c.health, Health.HEALTH_WARNING);
      assert.deepEqual(c.issues, issues);
      assert.equal(c.lastHeartbeat?.getTime(), at.getTime());
      assertSrlabError(() => s.recordHeartbeat("nope", Health.HEALTH_NORMAL, [], at), ErrorCode.NOT_FOUND, /component "nope"/);
    });
  });

  test("invalid registrations are rejected", () => {
    withStore(freshPath(), (s) => {
      assertSrlabError(
        () => s.registerComponent({ role: 99 as ComponentRole, name: "x", address: "", location: 1, version: "", credentialHash: "" }),
        ErrorCode.INVALID_ARGUMENT,
        /role 99/,
      );
      assertSrlabError(
        () => s.registerComponent({ role: 2, name: " ", address: "", location: 1, version: "", credentialHash: "" }),
        ErrorCode.INVALID_ARGUMENT,
        /name must not be empty/,
      );
    });
  });
});

describe("ConfigStore machines and disks", () => {
  test("upsert by name keeps the machine id; disks keep their index and a later disk records its sequence", () => {
    withStore(freshPath(), (s) => {
      const agent = registerAgent(s, "vm1");
      const m = s.upsertMachine({ name: "vm1", agentComponentId: agent.componentId });
      assert.equal(m.state, ReplicationState.REPLICATION_STATE_UNPROTECTED);
      assert.equal(s.upsertMachine({ name: "vm1", agentComponentId: agent.componentId }).machineId, m.machineId);
      s.setMachineDisks(m.machineId, [disk("d0", 0)]);
      s.updateMachine(m.machineId, {
        stats: {
          rpoSeconds: 0,
          pendingBytes: 0,
          throughputBytesPerSecond: 0,
          receivedSequence: 41,
          uploadedSequence: 41,
          processedSequence: 40,
          captureMode: CaptureMode.CAPTURE_MODE_DATA,
          bytesSent: 4096,
          capturedSequence: 0,
          processedLagSeconds: 0,
          unprocessedBytes: 0,
          capturedBytes: 0,
          receivedBytes: 4096,
          uploadedBytes: 4096,
          processedBytes: 0,
          dataModeSeconds: 0,
          metadataModeSeconds: 0,
          bitmapModeSeconds: 0,
        },
      });
      // Reported in another order and with a clashing index: d0 stays 0, d1 gets the next free.
      const after = s.setMachineDisks(m.machineId, [disk("d1", 0), disk("d0", 5)]);
      assert.deepEqual(
        after.disks.map((d) => [d.diskId, d.index, d.addedAtSequence]),
        [
          ["d0", 0, 0],
          ["d1", 1, 42],
        ],
      );
      // An explicit added_at_sequence from the agent wins.
      const third = s.setMachineDisks(m.machineId, [disk("d0", 0), disk("d1", 1), disk("d2", 2, 100)]);
      assert.equal(third.disks[2].addedAtSequence, 100);
      assert.equal(s.getMachine("vm1")?.machineId, m.machineId);
      assert.equal(s.getMachine(m.machineId)?.name, "vm1");
      assert.equal(s.getMachine("missing"), undefined);
    });
  });

  test("updateMachine patches only the given fields and validates references", () => {
    withStore(freshPath(), (s) => {
      const agent = registerAgent(s, "vm1");
      const m = s.upsertMachine({ name: "vm1", agentComponentId: agent.componentId });
      const u = s.updateMachine(m.machineId, {
        state: ReplicationState.REPLICATION_STATE_FAILED_OVER,
        health: Health.HEALTH_CRITICAL,
        issues: [{ health: Health.HEALTH_CRITICAL, code: HealthIssueCode.HEALTH_ISSUE_CODE_AGENT_UNREACHABLE, message: "bad" }],
        policyName: "default",
        direction: ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES,
        resyncRequired: true,
        resyncReason: "pending changes reached 50% of disk size",
        azureDisks: [disk("a0", 0)],
        testFailoverActive: true,
      });
      assert.equal(u.state, ReplicationState.REPLICATION_STATE_FAILED_OVER);
      assert.equal(u.health, Health.HEALTH_CRITICAL);
      assert.equal(u.issues[0].code, HealthIssueCode.HEALTH_ISSUE_CODE_AGENT_UNREACHABLE);
      assert.equal(u.policyName, "default");
      assert.equal(u.direction, ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES);
      assert.equal(u.resyncRequired, true);
      assert.equal(u.azureDisks[0].diskId, "a0");
      assert.equal(u.testFailoverActive, true);
      const v = s.updateMachine(m.machineId, { testFailoverActive: false });
      assert.equal(v.testFailoverActive, false);
      assert.equal(v.resyncRequired, true);
      assertSrlabError(() => s.updateMachine(m.machineId, { policyName: "nope" }), ErrorCode.NOT_FOUND, /policy "nope"/);
      assertSrlabError(() => s.updateMachine(m.machineId, { processServerId: agent.componentId }), ErrorCode.INVALID_ARGUMENT, /not a process server/);
      assertSrlabError(() => s.updateMachine("ghost", { state: 1 }), ErrorCode.MACHINE_NOT_FOUND, /machine "ghost"/);
    });
  });
});

describe("ConfigStore process server assignment", () => {
  test("picks the least-loaded PS of the requested location", () => {
    withStore(freshPath(), (s) => {
      const a = registerPs(s, "ps-a");
      const b = registerPs(s, "ps-b");
      const az = registerPs(s, "ps-azure", SiteLocation.SITE_LOCATION_AZURE);
      const machines = ["m1", "m2", "m3"].map((n) => s.upsertMachine({ name: n, agentComponentId: registerAgent(s, n).componentId }));
      // Equal load: tie broken by pending bytes from the last heartbeat.
      s.recordHeartbeat(a.componentId, Health.HEALTH_NORMAL, [], new Date(), 5_000);
      s.recordHeartbeat(b.componentId, Health.HEALTH_NORMAL, [], new Date(), 10);
      assert.equal(s.assignProcessServer(machines[0].machineId).componentId, b.componentId);
      // b now has one machine, a none.
      assert.equal(s.assignProcessServer(machines[1].machineId).componentId, a.componentId);
      // 1-1 again; b has fewer pending bytes.
      assert.equal(s.assignProcessServer(machines[2].machineId).componentId, b.componentId);
      assert.deepEqual(
        s.machinesOfProcessServer(b.componentId).map((m) => m.name),
        ["m1", "m3"],
      );
      assert.equal(s.getMachine("m2")?.processServerId, a.componentId);
      // Azure is only chosen when asked for, and never for on-prem.
      assert.equal(s.machinesOfProcessServer(az.componentId).length, 0);
      assert.equal(s.assignProcessServer(machines[0].machineId, SiteLocation.SITE_LOCATION_AZURE).componentId, az.componentId);
      assert.deepEqual(
        s.machinesOfProcessServer(b.componentId).map((m) => m.name),
        ["m3"],
      );
    });
  });

  test("re-assigning a machine does not count it against its current PS", () => {
    withStore(freshPath(), (s) => {
      const a = registerPs(s, "ps-a");
      registerPs(s, "ps-b");
      const m = s.upsertMachine({ name: "m1", agentComponentId: "" });
      s.recordHeartbeat(a.componentId, Health.HEALTH_NORMAL, [], new Date(), 0);
      assert.equal(s.assignProcessServer(m.machineId).componentId, a.componentId);
      assert.equal(s.assignProcessServer(m.machineId).componentId, a.componentId);
    });
  });

  test("no PS of the location is a clear error", () => {
    withStore(freshPath(), (s) => {
      registerPs(s, "ps-a");
      const m = s.upsertMachine({ name: "m1", agentComponentId: "" });
      assertSrlabError(
        () => s.assignProcessServer(m.machineId, SiteLocation.SITE_LOCATION_AZURE),
        ErrorCode.WRONG_STATE,
        /no process server is registered at SITE_LOCATION_AZURE/,
      );
    });
  });
});
