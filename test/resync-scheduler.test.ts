import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { silentLogger } from "../common/logger.js";
import type { ProtectionJobs } from "../config-server/protection-jobs.js";
import { ResyncScheduler } from "../config-server/resync-scheduler.js";
import { ConfigStore, IMMEDIATE_RESYNC, OFF_HOURS_RESYNC_SCHEDULE } from "../config-server/store/index.js";
import { ComponentRole, ReplicationState, SiteLocation } from "../proto/index.js";

const dir = mkdtempSync(join(tmpdir(), "srlab-resync-sched-"));
let open: Array<{ store: ConfigStore; scheduler: ResyncScheduler }> = [];
afterEach(() => {
  for (const o of open) {
    o.scheduler.stop();
    o.store.close();
  }
  open = [];
});

function lab(resyncWindow: string) {
  const store = ConfigStore.open(join(dir, `${Math.random().toString(36).slice(2)}.db`), { timeUnitSeconds: 1 });
  const base = store.getPolicy("default")!;
  store.createPolicy({ ...base, name: "p", resyncSchedule: resyncWindow, failback: false });
  const agent = store.registerComponent({
    role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
    name: "vm1",
    address: "vm1:1",
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    version: "1",
    credentialHash: "h",
  });
  const m = store.upsertMachine({ name: "vm1", agentComponentId: agent.componentId });
  store.updateMachine(m.machineId, { policyName: "p", state: ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED, resyncRequired: true });
  const started: string[] = [];
  const jobs = { startResync: (id: string, reason: string) => started.push(`${id}: ${reason}`) } as unknown as ProtectionJobs;
  const scheduler = new ResyncScheduler(store, jobs, silentLogger());
  open.push({ store, scheduler });
  return { store, scheduler, started, machineId: m.machineId };
}

describe("resync window", () => {
  test("immediate: a machine that needs a resync gets one at once, and status says now", () => {
    const { store, scheduler, started, machineId } = lab(IMMEDIATE_RESYNC);
    const now = new Date();
    expect(scheduler.nextResync(store.getMachine(machineId)!, now)?.getTime()).toBe(now.getTime());
    scheduler.start();
    expect(started).toEqual([`${machineId}: resync window: immediate`]);
  });

  test("a cron window waits for its next run, and status says when that is", () => {
    const { store, scheduler, started, machineId } = lab(OFF_HOURS_RESYNC_SCHEDULE);
    scheduler.start();
    expect(started).toEqual([]);
    const next = scheduler.nextResync(store.getMachine(machineId)!)!;
    expect(next.getTime()).toBeGreaterThan(Date.now() - 1000);
    // Outside office hours: 00:00-07:59 or 18:00-23:59 local time.
    expect(next.getHours() < 8 || next.getHours() >= 18).toBe(true);
  });

  test("no next resync for a machine that does not need one", () => {
    const { store, scheduler, machineId } = lab(IMMEDIATE_RESYNC);
    store.updateMachine(machineId, { state: ReplicationState.REPLICATION_STATE_PROTECTED, resyncRequired: false });
    expect(scheduler.nextResync(store.getMachine(machineId)!)).toBeUndefined();
  });

  test("policy validation accepts immediate and refuses other words", () => {
    const { store } = lab(IMMEDIATE_RESYNC);
    const base = store.getPolicy("default")!;
    expect(() => store.createPolicy({ ...base, name: "q", resyncSchedule: "soon", failback: false })).toThrow(/neither "immediate" nor a valid cron expression/);
  });
});

process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
