import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type YAMLMap } from "yaml";

/** Operations a plan runs; actions name the ones they run for. */
export const PLAN_OPERATIONS = ["test-failover", "failover", "failback", "reprotect", "commit", "cleanup"] as const;
export type PlanOperationName = (typeof PLAN_OPERATIONS)[number];

export interface PlanAction {
  kind: "script" | "manual";
  /** script: the command (run by `sh -c` in the plan file's directory). */
  script: string;
  /** manual: what the operator must do. */
  message: string;
  on: PlanOperationName[];
  timeoutSeconds: number;
}

export interface PlanGroup {
  name: string;
  machines: string[];
  pre: PlanAction[];
  post: PlanAction[];
}

export interface PlanSpec {
  name: string;
  targets: { rpoSeconds?: number; rtoSeconds?: number };
  replicationGroup: boolean;
  /** Where relative script paths resolve (the plan file's directory). */
  baseDir: string;
  groups: PlanGroup[];
}

export interface PlanLimits {
  /** ASR's limit is 7. */
  maxGroups: number;
  maxMachines: number;
  /** True when a machine of that name exists. */
  machineExists: (name: string) => boolean;
}

export const DEFAULT_SCRIPT_TIMEOUT_SECONDS = 300;

/** A refused plan file; the message names file, line and key. */
export class PlanFileError extends Error {}

/**
 * Parses and checks a plan file completely before anything is stored: unknown keys, wrong types,
 * limits and unknown machines are refused with `file:line: key: reason`.
 */
export function parsePlan(source: string, fileName: string, baseDir: string, limits: PlanLimits): PlanSpec {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false });
  const where = (node: Node | null | undefined, fallback = 0) => {
    const offset = node?.range?.[0] ?? fallback;
    return `${fileName}:${lines.linePos(offset).line}`;
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new PlanFileError(`${fileName}:${e.linePos?.[0]?.line ?? 1}: not valid YAML: ${e.message.split("\n")[0]}`);
  }
  const fail = (node: Node | null | undefined, key: string, reason: string): never => {
    throw new PlanFileError(`${where(node)}: ${key}: ${reason}`);
  };
  const root = doc.contents;
  if (!isMap(root)) return fail(root, "(top level)", "a plan is a mapping with name and groups");

  const onlyKeys = (map: YAMLMap, path: string, allowed: string[]) => {
    for (const pair of map.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : "";
      if (!allowed.includes(key)) fail(pair.key as Node, path ? `${path}.${key}` : key, `unknown key (allowed: ${allowed.join(", ")})`);
    }
  };
  const get = (map: YAMLMap, key: string) => map.get(key, true) as Node | undefined;
  const str = (node: Node | undefined, path: string, required = true): string => {
    if (node === undefined) return required ? fail(map0, path, "missing") : "";
    if (!isScalar(node) || typeof node.value !== "string" || node.value.trim() === "") return fail(node, path, "must be a non-empty string");
    return node.value;
  };
  const map0 = root;
  onlyKeys(root, "", ["name", "targets", "replicationGroup", "groups"]);

  const name = str(get(root, "name"), "name");
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) fail(get(root, "name"), "name", "1-63 letters, digits, '.', '_' or '-'");

  const targets: PlanSpec["targets"] = {};
  const t = get(root, "targets");
  if (t !== undefined) {
    if (!isMap(t)) fail(t, "targets", "must be a mapping with rpoSeconds and/or rtoSeconds");
    onlyKeys(t as YAMLMap, "targets", ["rpoSeconds", "rtoSeconds"]);
    for (const k of ["rpoSeconds", "rtoSeconds"] as const) {
      const v = get(t as YAMLMap, k);
      if (v === undefined) continue;
      if (!isScalar(v) || typeof v.value !== "number" || !(v.value > 0)) fail(v, `targets.${k}`, "must be a positive number of seconds");
      targets[k] = (v as { value: number }).value;
    }
  }

  const rg = get(root, "replicationGroup");
  if (rg !== undefined && (!isScalar(rg) || typeof rg.value !== "boolean")) fail(rg, "replicationGroup", "must be true or false");
  const replicationGroup = rg !== undefined && (rg as { value: boolean }).value;

  const groupsNode = get(root, "groups");
  if (groupsNode === undefined) fail(root, "groups", "missing: a plan needs at least one group");
  if (!isSeq(groupsNode) || groupsNode.items.length === 0) return fail(groupsNode, "groups", "must be a non-empty list");
  if (groupsNode.items.length > limits.maxGroups) {
    fail(groupsNode.items[limits.maxGroups] as Node, "groups", `${groupsNode.items.length} groups; a plan holds at most ${limits.maxGroups}`);
  }

  const seen = new Map<string, string>();
  const groupNames = new Set<string>();
  const groups: PlanGroup[] = groupsNode.items.map((item, gi) => {
    const path = `groups[${gi}]`;
    if (!isMap(item)) return fail(item as Node, path, "must be a mapping with name and machines");
    onlyKeys(item, path, ["name", "machines", "pre", "post"]);
    const gname = str(get(item, "name"), `${path}.name`);
    if (groupNames.has(gname)) fail(get(item, "name"), `${path}.name`, `group "${gname}" is listed twice`);
    groupNames.add(gname);
    const ms = get(item, "machines");
    if (!isSeq(ms) || ms.items.length === 0) return fail(ms ?? item, `${path}.machines`, "must be a non-empty list of machine names");
    const machines = ms.items.map((m, mi) => {
      const mpath = `${path}.machines[${mi}]`;
      const mname = str(m as Node, mpath);
      if (seen.has(mname)) fail(m as Node, mpath, `machine ${mname} is already in group ${seen.get(mname)}`);
      if (!limits.machineExists(mname)) fail(m as Node, mpath, `no machine named "${mname}" (see srlab status)`);
      seen.set(mname, gname);
      return mname;
    });
    if (seen.size > limits.maxMachines) fail(ms, `${path}.machines`, `more than ${limits.maxMachines} machines in the plan`);
    return { name: gname, machines, pre: actions(item, "pre", path), post: actions(item, "post", path) };
  });

  function actions(group: YAMLMap, key: "pre" | "post", gpath: string): PlanAction[] {
    const node = get(group, key);
    if (node === undefined) return [];
    if (!isSeq(node)) return fail(node, `${gpath}.${key}`, "must be a list of actions");
    return node.items.map((a, ai) => {
      const path = `${gpath}.${key}[${ai}]`;
      if (!isMap(a)) return fail(a as Node, path, "an action is a mapping with script or manual");
      onlyKeys(a, path, ["script", "manual", "on", "timeout"]);
      const script = get(a, "script");
      const manual = get(a, "manual");
      if ((script === undefined) === (manual === undefined)) fail(a, path, "give exactly one of script or manual");
      const onNode = get(a, "on");
      if (!isSeq(onNode) || onNode.items.length === 0) return fail(onNode ?? a, `${path}.on`, `must list the operations it runs for (${PLAN_OPERATIONS.join(", ")})`);
      const on = onNode.items.map((o, oi) => {
        const op = str(o as Node, `${path}.on[${oi}]`);
        if (!(PLAN_OPERATIONS as readonly string[]).includes(op)) fail(o as Node, `${path}.on[${oi}]`, `unknown operation "${op}" (${PLAN_OPERATIONS.join(", ")})`);
        return op as PlanOperationName;
      });
      const timeoutNode = get(a, "timeout");
      let timeoutSeconds = DEFAULT_SCRIPT_TIMEOUT_SECONDS;
      if (timeoutNode !== undefined) {
        if (manual !== undefined) fail(timeoutNode, `${path}.timeout`, "a manual action waits for srlab plan resume; it has no timeout");
        const seconds = isScalar(timeoutNode) ? parseSeconds(timeoutNode.value) : undefined;
        if (seconds === undefined) return fail(timeoutNode, `${path}.timeout`, 'must be a duration such as "60s", "5m" or a number of seconds');
        timeoutSeconds = seconds;
      }
      return {
        kind: script !== undefined ? "script" : "manual",
        script: script !== undefined ? str(script, `${path}.script`) : "",
        message: manual !== undefined ? str(manual, `${path}.manual`) : "",
        on,
        timeoutSeconds,
      } satisfies PlanAction;
    });
  }

  return { name, targets, replicationGroup, baseDir, groups };
}

function parseSeconds(v: unknown): number | undefined {
  if (typeof v === "number") return v > 0 ? v : undefined;
  if (typeof v !== "string") return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h"];
  return n > 0 ? n : undefined;
}

/** Machines of the plan, in group order. */
export function planMachines(spec: PlanSpec): string[] {
  return spec.groups.flatMap((g) => g.machines);
}
