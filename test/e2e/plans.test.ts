import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { describe, expect } from "vitest";
import { LabLayout } from "../../cli/lab/index.js";
import { srlab, srlabAsync, srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { browserMissing, withPage } from "../support/browser.js";
import { connectNbd, hasTool } from "../support/images.js";
import { test } from "../support/lab.js";
import { flipByteInBlob } from "../support/lab-storage.js";
import { applyHeldPlan, applyTwoGroupPlan, type PlanRun, type RehearsalReport, releaseHeldPlan } from "../support/plans.js";

interface MachineStatus {
  name: string;
  machineId: string;
  disks: Array<{ path: string; nbd: string }>;
  testFailover: { disks: Array<{ index: number; blob: string }> } | null;
  failover: { disks: Array<{ index: number; blob: string }> } | null;
}
interface GroupPointDoc {
  groupPointId: string;
  tagName: string;
  holdMs: number;
  members: Array<{ machineId: string; sequence: number; recoveryPointId: string }>;
}

/** A member's own recovery point of a group point. */
const memberPoint = (point: GroupPointDoc, machineId: string): string => point.members.find((x) => x.machineId === machineId)!.recoveryPointId;

const MiB = 1024 * 1024;
const PAGE = 4096;
let dir: string;
let work: string;
const machines = ["machine-1", "machine-2", "machine-3"];

async function status(name: string): Promise<MachineStatus> {
  const s = await srlabJson<{ machines: MachineStatus[] }>(["status", "--dir", dir]);
  return s.machines.find((m) => m.name === name)!;
}

/** Record n of the causal workload: a page that says which record it is. */
function record(n: number): Buffer {
  const page = Buffer.alloc(PAGE, 0x5a);
  page.writeUInt32BE(n, 0);
  return page;
}

/** The records present in an image: page n (n ≥ 1) holds record n once written. */
function recordsIn(image: Buffer): number[] {
  const found: number[] = [];
  for (let n = 1; (n + 1) * PAGE <= image.length; n++) {
    if (image.readUInt32BE(n * PAGE) === n && image[n * PAGE + 4] === 0x5a) found.push(n);
  }
  return found;
}

let point: GroupPointDoc;

test.beforeAll(async ({ startLab }) => {
  ({ dir, work } = await startLab({ name: "plans", up: ["--machines", "3", "--disk-size", "4MiB", "--time-unit", "1s"] }));
  await srlabOk(["network", "create", "isolated", "--address-space", "192.168.0.0/16", "--dir", dir]);
  await Promise.all(machines.map((m) => srlabOk(["protect", m, "--wait", "--dir", dir], 300_000)));
  await srlabOk(["group", "create", "app", "--machines", machines.join(","), "--dir", dir]);
}, 600_000);

describe("group-consistent points and proofs", () => {
  test("a group point cut under a causal workload: no recovered B holds a record its A lacks, and every disk's proof holds", async () => {
    const [a, b] = await Promise.all([status("machine-1"), status("machine-2")]);
    const nbdA = await connectNbd(a.disks[0]!.nbd);
    const nbdB = await connectNbd(b.disks[0]!.nbd);
    // Causal chain: B writes record n only after A acknowledged record n.
    let stop = false;
    let written = 0;
    const chain = (async () => {
      for (let n = 1; !stop && (n + 1) * PAGE <= 4 * MiB; n++) {
        await nbdA.write(n * PAGE, record(n));
        await nbdB.write(n * PAGE, record(n));
        written = n;
      }
    })();
    if (hasTool("fio")) {
      const m3 = await status("machine-3");
      execFileSync("fio", ["--name=w", "--ioengine=nbd", `--uri=${m3.disks[0]!.nbd}`, "--rw=randwrite", "--bs=4k", "--size=2m", "--iodepth=8"]);
    }
    await waitUntil("the causal chain's first 20 records", () => written >= 20, 300_000, 20);
    point = await srlabJson<GroupPointDoc>(["group", "tag", "app", "--dir", dir], 120_000);
    stop = true;
    await chain;
    await Promise.all([nbdA.close(), nbdB.close()]);
    assert.equal(point.members.length, 3);
    assert.ok(point.holdMs >= 0, "the write hold is reported");

    // The group point, exported for A and B through their own member points.
    const images: Record<string, Buffer> = {};
    for (const m of [a, b]) {
      const out = join(work, `${m.name}.img`);
      await srlabOk(["export", m.name, "--point", memberPoint(point, m.machineId), "--to", out, "--dir", dir]);
      images[m.name] = readFileSync(out);
    }
    const inA = recordsIn(images["machine-1"]!);
    const inB = recordsIn(images["machine-2"]!);
    const maxA = inA.at(-1) ?? 0;
    assert.ok(inB.every((n) => n <= maxA), `B holds records up to ${inB.at(-1)} but A only up to ${maxA}`);
    assert.ok(written > (inA.at(-1) ?? 0) || written === inA.at(-1), "the chain ran past or up to the cut");

    // Every member's point proves equal to the source at the tag.
    for (const m of machines) {
      const r = await srlab(["verify", m, "--point", point.groupPointId, "--dir", dir]);
      assert.equal(r.code, 0, `${m}: ${r.stderr}`);
      assert.match(r.stdout, /disk 0: ok, fingerprint [0-9a-f]{64}/);
    }
  });

  test("a corrupted test-failover disk fails srlab verify, naming the disk and the offset range", async () => {
    const m3 = await status("machine-3");
    await srlabOk(["failover", "machine-3", "--test", "--network", "isolated", "--point", memberPoint(point, m3.machineId), "--dir", dir], 300_000);
    const ok = await srlab(["verify", "machine-3", "--test", "--dir", dir]);
    assert.equal(ok.code, 0, ok.stderr);

    // Flip one byte of the test machine's disk, in storage.
    const blob = (await status("machine-3")).testFailover!.disks[0]!.blob;
    const at = 3 * MiB + 5 * PAGE + 100;
    await flipByteInBlob(dir, blob, at);

    const bad = await srlab(["verify", "machine-3", "--test", "--dir", dir]);
    assert.equal(bad.code, 1);
    const pageStart = at - (at % PAGE);
    assert.match(bad.stderr, new RegExp(`disk 0 differs from the source at sequence \\d+: bytes ${pageStart}-${pageStart + PAGE - 1}`));
    assert.equal(bad.stderr.split("\n").filter((l) => l.startsWith("srlab:")).length, 1, "one error line");
    await srlabOk(["failover-cleanup", "machine-3", "--dir", dir], 120_000);
  });
});

describe("recovery plans", () => {
  test("a plan of 3 machines in 2 groups: groups in order, the script gets its context, the manual action waits for resume", async () => {
    const script = { name: "record.sh", body: `#!/bin/sh\ncp "$SRLAB_CONTEXT_FILE" context.json\necho "$SRLAB_PLAN $SRLAB_OPERATION $SRLAB_GROUP"\n` };
    await applyTwoGroupPlan({ dir, work }, { name: "e2e", web: ["machine-2", "machine-3"], on: ["test-failover"], script });
    await srlabOk(["group", "tag", "plan-e2e", "--dir", dir], 120_000);

    const waiting = await srlabJson<PlanRun>(["plan", "run", "e2e", "--op", "test-failover", "--network", "isolated", "--point", "latest-group-consistent", "--dir", dir], 300_000);
    const manual = waiting.steps.find((s) => s.name.startsWith("web: pre 1"))!;
    assert.equal(manual.state, "waiting-for-manual-action");
    assert.ok(waiting.steps.filter((s) => s.group === "web" && s.machine).every((s) => s.state === "not-started"), "web waits behind its pre-action");

    const run = await srlabJson<PlanRun>(["plan", "resume", waiting.runId, "--comment", "drained", "--dir", dir], 300_000);
    assert.equal(run.state, "succeeded");
    const db = run.steps.filter((s) => s.group === "db");
    const web = run.steps.filter((s) => s.group === "web");
    const lastDbEnd = Math.max(...db.map((s) => Date.parse(s.endedAt!)));
    const firstWebMachineStart = Math.min(...web.filter((s) => s.machine).map((s) => Date.parse(s.startedAt!)));
    assert.ok(lastDbEnd <= firstWebMachineStart, "group web starts after group db (machines and post-action) ended");
    assert.equal(run.steps.find((s) => s.name.startsWith("web: pre 1"))!.output, "drained");
    assert.match(run.steps.find((s) => s.name.startsWith("db: post 1"))!.output ?? "", /e2e test-failover db/);

    // The context file as the docs describe it.
    const context = JSON.parse(readFileSync(join(work, "context.json"), "utf8"));
    assert.equal(context.plan, "e2e");
    assert.equal(context.operation, "test-failover");
    assert.equal(context.group, "db");
    assert.equal(context.direction, "on-premises-to-azure");
    const m1 = context.machines.find((m: { name: string }) => m.name === "machine-1");
    assert.ok(m1.recoveryPointId && m1.sequence > 0, "machine-1 names its recovery point and sequence");
    assert.match(m1.disks[0].blob, /test-failover/);
    assert.deepEqual(context.machines.map((m: { name: string }) => m.name), machines);

    for (const m of machines) assert.equal((await srlab(["verify", m, "--test", "--dir", dir])).code, 0);
    const cleaned = await srlabJson<PlanRun>(["plan", "run", "e2e", "--op", "cleanup", "--dir", dir], 300_000);
    assert.equal(cleaned.state, "succeeded");
  });

  test("a plan with 8 groups or an unknown machine is refused with one clear line, and nothing is stored", async () => {
    const eight = ["name: big", "groups:", ...Array.from({ length: 8 }, (_, i) => `  - name: g${i}\n    machines: [machine-${(i % 3) + 1}]`)].join("\n");
    writeFileSync(join(work, "big.yaml"), eight);
    const big = await srlab(["plan", "apply", "-f", join(work, "big.yaml"), "--dir", dir]);
    assert.equal(big.code, 1);
    assert.match(big.stderr, /^srlab: big\.yaml:\d+: groups: 8 groups; a plan holds at most 7\n$/);

    writeFileSync(join(work, "unknown.yaml"), "name: unknown\ngroups:\n  - name: a\n    machines: [machine-1, machine-9]\n");
    const unknown = await srlab(["plan", "apply", "-f", join(work, "unknown.yaml"), "--dir", dir]);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, 'srlab: unknown.yaml:4: groups[0].machines[1]: no machine named "machine-9" (see srlab status)\n');

    const plans = await srlabJson<Array<{ name: string }>>(["plan", "list", "--dir", dir]);
    assert.deepEqual(plans.map((p) => p.name), ["e2e"]);
  });
});

describe("srlab rehearse --cycle full", () => {
  let full: RehearsalReport;
  /** Where the full cycle's report goes (the work directory exists once the lab has started). */
  const out = () => join(work, "full");

  test("3 machines in 2 groups over to Azure and back, with writes in Azure and the plan's actions: every step succeeds, every disk is proved at every step", async () => {
    const script = { name: "each-op.sh", body: `#!/bin/sh\ncp "$SRLAB_CONTEXT_FILE" "context-$SRLAB_OPERATION.json"\necho "$SRLAB_OPERATION $SRLAB_FAILOVER_TYPE $SRLAB_DIRECTION"\n` };
    await applyTwoGroupPlan({ dir, work }, { name: "full", web: ["machine-2", "machine-3"], on: ["failover", "failback"], script });

    const r = await srlab(["rehearse", "full", "--cycle", "full", "--workload", "oltp", "--rate", "256KiB/s", "--network", "isolated", "--auto-approve", "--report", out(), "--dir", dir, "--json"], 1_200_000);
    expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0);
    full = JSON.parse(r.stdout) as RehearsalReport;
    expect(full).toMatchObject({ cycle: "full", result: "passed", failures: [] });
    // The lab started each machine in Azure when the rehearsal waited for it, and stopped it after the commit.
    expect(r.stderr).toMatch(/machine-3 runs in Azure \(agent machine-3-azure/);
    expect(r.stderr).toMatch(/machine-3 no longer runs in Azure/);

    const names = full.steps.map((s) => s.name);
    expect(names.slice(names.indexOf("replication healthy: machine-3") + 1)).toEqual([
      "workload: generated writes until the planned failover",
      "planned failover: db: failover machine-1",
      "planned failover: db: post 1 (script)",
      "planned failover: web: pre 1 (manual)",
      "planned failover: web: failover machine-2",
      "planned failover: web: failover machine-3",
      "verify: failover of machine-1",
      "verify: failover of machine-2",
      "verify: failover of machine-3",
      "commit failover: db: commit machine-1",
      "commit failover: web: commit machine-2",
      "commit failover: web: commit machine-3",
      "running in Azure: machine-1",
      "running in Azure: machine-2",
      "running in Azure: machine-3",
      "writes in Azure: machine-1",
      "writes in Azure: machine-2",
      "writes in Azure: machine-3",
      "reprotect to on-premises: db: reprotect machine-1",
      "reprotect to on-premises: web: reprotect machine-2",
      "reprotect to on-premises: web: reprotect machine-3",
      "failback: db: failback machine-1",
      "failback: db: post 1 (script)",
      "failback: web: pre 1 (manual)",
      "failback: web: failback machine-2",
      "failback: web: failback machine-3",
      "verify: failback of machine-1",
      "verify: failback of machine-2",
      "verify: failback of machine-3",
      "commit failback: db: commit machine-1",
      "commit failback: web: commit machine-2",
      "commit failback: web: commit machine-3",
      "reprotect to Azure: db: reprotect machine-1",
      "reprotect to Azure: web: reprotect machine-2",
      "reprotect to Azure: web: reprotect machine-3",
      "tag: app point after reprotect",
      "verify: replica of machine-1",
      "verify: replica of machine-2",
      "verify: replica of machine-3",
    ]);
    for (const s of full.steps) expect(s.state, s.name).toBe("succeeded");
    // Group order from the step times: web fails over (and back) only after db and its script ended.
    const step = (n: string) => full.steps.find((s) => s.name === n)!;
    for (const op of ["planned failover", "failback"]) {
      const verb = op === "failback" ? "failback" : "failover";
      const dbEnd = Date.parse(step(`${op}: db: post 1 (script)`).endedAt!);
      expect(Date.parse(step(`${op}: db: ${verb} machine-1`).endedAt!)).toBeLessThanOrEqual(dbEnd);
      for (const m of ["machine-2", "machine-3"]) expect(Date.parse(step(`${op}: web: ${verb} ${m}`).startedAt!)).toBeGreaterThanOrEqual(dbEnd);
    }
    expect(step("planned failover: db: post 1 (script)").output).toContain("failover planned on-premises-to-azure");
    expect(step("failback: db: post 1 (script)").output).toContain("failback planned azure-to-on-premises");
    // The script's context names each machine's failed-over disk and the point it came from.
    const ctx = JSON.parse(readFileSync(join(work, "context-failover.json"), "utf8"));
    expect(ctx).toMatchObject({ plan: "full", operation: "failover", failoverType: "planned", direction: "on-premises-to-azure", group: "db" });
    expect(ctx.machines.map((m: { name: string }) => m.name)).toEqual(machines);
    const m1 = ctx.machines[0];
    expect(m1.sequence).toBeGreaterThan(0);
    expect(m1.disks[0].blob).toMatch(/failover/);

    for (const m of full.machines) {
      // A proof per disk at every verify step: test failover, failover, failback, replica.
      expect(m.proofs.map((p) => p.step)).toEqual([
        `verify: test failover of ${m.name}`,
        `verify: failover of ${m.name}`,
        `verify: failback of ${m.name}`,
        `verify: replica of ${m.name}`,
      ]);
      for (const p of m.proofs) {
        expect(p.ok, p.step).toBe(true);
        expect(p.actual, p.step).toBe(p.expected);
        expect(p.actual).toMatch(/^[0-9a-f]{64}$/);
      }
      const [, failedOver, failedBack] = m.proofs;
      expect(failedBack!.against).toBe("the Azure disk");
      // The failback brought home what was written in Azure, not the disk that failed over.
      expect(failedBack!.expected).not.toBe(failedOver!.actual);
      // RPO and RTO of each failover and failback, judged against the plan's targets.
      expect(m.figures!.map((f) => f.operation)).toEqual(["test-failover", "failover", "failback"]);
      for (const f of m.figures!) {
        expect(f.rtoSeconds, f.operation).toBeGreaterThan(0);
        expect(f.rpoSeconds, f.operation).not.toBeNull();
        expect(f, f.operation).toMatchObject({ rpoMet: true, rtoMet: true });
      }
      expect(m.rtoSeconds).toBe(Math.max(...m.figures!.map((f) => f.rtoSeconds!)));
    }

    // Back where it started: protected to Azure from on-premises, nothing left running in Azure.
    const s = await srlabJson<{ machines: Array<{ name: string; state: string; direction: string; azureDisks: unknown[] }> }>(["status", "--dir", dir]);
    for (const m of machines) expect(s.machines.find((x) => x.name === m)).toMatchObject({ state: "protected", direction: "on-premises-to-azure", azureDisks: [] });
    expect(new LabLayout(dir).read().components.filter((c) => c.name.endsWith("-azure") && c.role === "agent")).toEqual([]);
  }, 1_500_000);

  test("junit.xml and report.html show the full cycle's steps, proofs and figures", async ({ skip }) => {
    const xml = readFileSync(join(out(), "junit.xml"), "utf8");
    expect(XMLValidator.validate(xml)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false, isArray: (n) => n === "testsuite" || n === "testcase" }).parse(xml);
    const [steps, proofs, targets] = doc.testsuites.testsuite as Array<{ testcase: Array<{ "@_name": string }> }>;
    expect(steps!.testcase.map((c) => c["@_name"])).toEqual(full.steps.map((s) => s.name));
    expect(proofs!.testcase).toHaveLength(12);
    expect(targets!.testcase).toHaveLength(3 * 3 * 2);
    expect(targets!.testcase.map((c) => c["@_name"])).toContain(`machine-2 RTO of the failback ${full.machines[1]!.figures![2]!.rtoSeconds!.toFixed(1)} s within 600 s`);
    expect(xml).not.toContain("<failure");

    const missing = browserMissing();
    if (missing) return skip(missing);
    await withPage(join(out(), "report.html"), async (opened) => {
      await opened.page.waitForFunction(() => document.querySelectorAll("[data-chart]:not([data-drawn])").length === 0);
      const text = await opened.page.locator("#steps").textContent();
      for (const s of full.steps) expect(text).toContain(s.name);
      expect(await opened.page.locator("#timeline .row").count()).toBe(full.steps.length);
      expect(await opened.page.locator("#proofs tbody tr").count()).toBe(12);
      expect(await opened.page.locator("#proofs tbody .badge.pass").count()).toBe(12);
      expect(await opened.page.locator("#proofs tbody").textContent()).toContain("the Azure disk");
      // The first table of the section (the RPO chart's legend is a table too): a row per machine and operation.
      expect(await opened.page.locator("#targets table").first().locator("tbody tr").count()).toBe(9);
      opened.assertNoErrors({ offline: true });
    });
  });
});

// Last in the file: it leaves machine-3 failed over, as a real drill that found a bad disk would.
describe("a full cycle that finds a difference", () => {
  test("a corrupted failed-over disk fails the rehearsal at its proof, naming the disk and range, and the cycle goes no further", async () => {
    // Lets the test touch the failed-over disk between the failover and its verify step.
    await applyHeldPlan({ dir, work }, "broken", "machine-3", "failover");
    const running = srlabAsync(["rehearse", "broken", "--cycle", "full", "--network", "isolated", "--report", join(work, "broken"), "--dir", dir]);

    await waitUntil("the planned failover to be held", async () => existsSync(join(work, "held")), 600_000, 500);
    const blob = (await status("machine-3")).failover!.disks[0]!.blob;
    const at = 1 * MiB + 3 * PAGE + 7;
    await flipByteInBlob(dir, blob, at);
    releaseHeldPlan(work);

    const r = await running;
    expect(r.code, r.stdout).toBe(1);
    const pageStart = at - (at % PAGE);
    const range = `bytes ${pageStart}-${pageStart + PAGE - 1}`;
    expect(r.stderr).toMatch(new RegExp(`machine-3 disk 0 at "verify: failover of machine-3" differs from the source at sequence \\d+: ${range}`));
    const report = JSON.parse(readFileSync(join(work, "broken", "report.json"), "utf8")) as RehearsalReport;
    expect(report.result).toBe("failed");
    const state = (n: string) => report.steps.find((s) => s.name === n)!.state;
    expect(state("verify: failover of machine-3")).toBe("failed");
    expect(state("commit failover: web: commit machine-3")).toBe("not-started");
    expect(state("verify: replica of machine-3")).toBe("not-started");
    expect(report.machines[0]!.proofs.at(-1)).toMatchObject({ step: "verify: failover of machine-3", ok: false });

    // srlab verify says the same, in one line.
    const bad = await srlab(["verify", "machine-3", "--failed-over", "--dir", dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`disk 0 differs from the source at sequence \\d+: ${range}`));
    expect((await status("machine-3")).failover).not.toBeNull();
  }, 1_200_000);
});
