import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RehearsalReport } from "../../config-server/plans/index.js";
import { srlabOk } from "./cli.js";

export type { RehearsalReport };

/** `srlab plan run|resume --json`: its steps are those a rehearsal's report lists. */
export interface PlanRun {
  runId: string;
  state: string;
  steps: RehearsalReport["steps"];
}

/** Writes an executable script into the plan's directory (scripts run there). */
function writeScript(work: string, name: string, body: string): void {
  writeFileSync(join(work, name), body);
  chmodSync(join(work, name), 0o755);
}

/**
 * Applies the plan the docs use as their example: group db (machine-1) runs `script` after each
 * operation in `on`; group web (`web`) waits for a manual action ("the load balancer is drained")
 * before it; replication group and 600 s targets.
 */
export async function applyTwoGroupPlan(
  lab: { dir: string; work: string },
  plan: { name: string; web: string[]; on: string[]; script: { name: string; body: string } },
): Promise<void> {
  const on = `        on: [${plan.on.join(", ")}]`;
  const yaml = [`name: ${plan.name}`, "targets: { rpoSeconds: 600, rtoSeconds: 600 }", "replicationGroup: true", "groups:"];
  yaml.push("  - name: db", "    machines: [machine-1]", "    post:", `      - script: ./${plan.script.name}`, on, "        timeout: 30s");
  yaml.push("  - name: web", `    machines: [${plan.web.join(", ")}]`, "    pre:", "      - manual: Confirm the load balancer is drained", on, "");
  writeFileSync(join(lab.work, `${plan.name}.yaml`), yaml.join("\n"));
  writeScript(lab.work, plan.script.name, plan.script.body);
  await srlabOk(["plan", "apply", "-f", join(lab.work, `${plan.name}.yaml`), "--dir", lab.dir]);
}

/**
 * Applies a one-machine plan whose post-action after `op` touches `held` in the work directory
 * and waits for `go` (see releaseHeldPlan): the test can touch a failed-over disk between the
 * failover and the rehearsal's verify step.
 */
export async function applyHeldPlan(lab: { dir: string; work: string }, name: string, machine: string, op: string): Promise<void> {
  const yaml = [`name: ${name}`, "groups:", "  - name: web", `    machines: [${machine}]`, "    post:", "      - script: ./hold.sh", `        on: [${op}]`, "        timeout: 120s", ""];
  writeFileSync(join(lab.work, `${name}.yaml`), yaml.join("\n"));
  writeScript(lab.work, "hold.sh", "#!/bin/sh\ntouch held\nwhile [ ! -f go ]; do sleep 0.2; done\n");
  await srlabOk(["plan", "apply", "-f", join(lab.work, `${name}.yaml`), "--dir", lab.dir]);
}

/** Lets the held plan's post-action end. */
export function releaseHeldPlan(work: string): void {
  writeFileSync(join(work, "go"), "");
}
