import { AdminClient } from "../admin-client.js";
import { printJson, printTable } from "../output.js";
import { followJob } from "./verify.js";
import { JobState } from "../../proto/index.js";

export function groupCreate(dir: string, name: string, o: { machines: string; json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const machines = o.machines.split(",").map((m) => m.trim()).filter(Boolean);
    const { group } = await c.callOn(c.groups, c.groups.createGroup, { name, machines });
    if (o.json) printJson(group);
    else console.log(`group ${group!.name}: ${group!.machines.join(", ")}`);
  });
}

export function groupList(dir: string, o: { json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { groups } = await c.callOn(c.groups, c.groups.listGroups, {});
    if (o.json) printJson(groups);
    else printTable(["GROUP", "MACHINES"], groups.map((g) => [g.name, g.machines.join(", ")]));
  });
}

export function groupDelete(dir: string, name: string) {
  return AdminClient.using(dir, async (c) => {
    await c.callOn(c.groups, c.groups.deleteGroup, { name });
    console.log(`group ${name} deleted`);
  });
}

/** A group-consistent (app-consistent) point across every member; reports how long writes were held. */
export function groupPoint(dir: string, name: string, o: { tag?: string; json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { job: started } = await c.callOn(c.groups, c.groups.createGroupPoint, { group: name, tagName: o.tag ?? "" });
    const job = await followJob(c, started!.jobId, !o.json);
    if (job.state !== JobState.JOB_STATE_SUCCEEDED) throw new Error(job.error);
    const kind = job.result?.kind;
    if (kind?.$case !== "groupPoint") throw new Error(`group point job ${job.jobId} ended without its point`);
    const r = kind.value;
    if (o.json) printJson(r);
    else console.log(`group point ${r.groupPointId} (${r.tagName}): ${r.members.length} machines, writes held at most ${r.holdMs.toFixed(1)} ms`);
  });
}

export function groupPoints(dir: string, name: string, o: { json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { points } = await c.callOn(c.groups, c.groups.listGroupPoints, { group: name });
    if (o.json) {
      printJson(points.map((p) => ({ ...p, time: p.time?.toISOString() ?? null })));
      return;
    }
    printTable(
      ["ID", "TIME", "TAG", "HOLD", "MEMBERS"],
      points.map((p) => [p.groupPointId, p.time?.toISOString() ?? "", p.tagName, `${p.holdMs.toFixed(1)} ms`, p.members.map((m) => `${m.machine}@${m.sequence}`).join(" ")]),
    );
  });
}
