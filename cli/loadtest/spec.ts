import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { parseDuration, parseRate, parseSize } from "../../common/units/index.js";
import { LOAD_PROFILES, PROFILE_NAMES } from "./profiles.js";
import { parseThreshold, type Threshold } from "./thresholds.js";

export interface Stage {
  durationSeconds: number;
  /** Write rate per machine, bytes per second. */
  rateBytesPerSecond: number;
}

export interface MachineGroup {
  /** How many machines, or which (by name); groups take machines in order. */
  count?: number;
  names?: string[];
  profile: string;
  stages: Stage[];
}

/** A load test, validated: everything a run needs, in base units. */
export interface LoadSpec {
  machines: number;
  via: "generator" | "nbd";
  /** A fio job file run once per machine against its NBD export (implies via nbd). */
  fioJobFile?: string;
  groups: MachineGroup[];
  thresholds: Threshold[];
  seed: number;
  drainTimeoutSeconds: number;
  diskSizeBytes?: number;
  plan: { machines: number; rpoSeconds: number; growthPercent: number };
}

export interface SpecFlags {
  spec?: string;
  machines?: string;
  profile?: string;
  rate?: string;
  duration?: string;
  via?: string;
  fio?: string;
  threshold?: string[];
  seed?: string;
  diskSize?: string;
  planMachines?: string;
  planRpo?: string;
  growth?: string;
}

export class SpecError extends Error {}

const KNOWN_KEYS = new Set(["machines", "via", "fio", "profile", "rate", "duration", "stages", "groups", "thresholds", "seed", "drainTimeout", "diskSize", "plan"]);

/**
 * Builds the spec from an optional YAML file and the flags (flags win). Every mistake is found
 * here, before anything starts, and reported as one line naming the field.
 */
export function buildSpec(flags: SpecFlags): LoadSpec {
  let doc: Record<string, unknown> = {};
  if (flags.spec) {
    let text: string;
    try {
      text = readFileSync(flags.spec, "utf8");
    } catch (err) {
      throw new SpecError(`cannot read spec ${flags.spec}: ${(err as Error).message}`);
    }
    try {
      doc = (parseYaml(text) as Record<string, unknown>) ?? {};
    } catch (err) {
      throw new SpecError(`spec ${flags.spec} is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
    }
    if (typeof doc !== "object" || Array.isArray(doc)) throw new SpecError(`spec ${flags.spec} must be a mapping of settings`);
    for (const k of Object.keys(doc)) if (!KNOWN_KEYS.has(k)) throw new SpecError(`spec: unknown setting "${k}" (known: ${[...KNOWN_KEYS].join(", ")})`);
  }
  const field = <T>(name: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof SpecError) throw err;
      throw new SpecError(`${name}: ${(err as Error).message}`);
    }
  };
  const num = (name: string, v: unknown, min: number, integer = true): number =>
    field(name, () => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) throw new Error(`must be ${integer ? "an integer" : "a number"} ≥ ${min}, got "${v}"`);
      return n;
    });
  const rate = (name: string, v: unknown): number =>
    field(name, () => {
      if (typeof v === "number" && v < 0) throw new Error(`must not be negative, got ${v}`);
      if (typeof v === "string" && v.trim().startsWith("-")) throw new Error(`must not be negative, got "${v}"`);
      return parseRate(v as string | number);
    });
  const duration = (name: string, v: unknown): number =>
    field(name, () => {
      if (typeof v === "string" && v.trim().startsWith("-")) throw new Error(`must not be negative, got "${v}"`);
      const ms = parseDuration(v as string | number);
      if (ms <= 0) throw new Error(`must be positive, got "${v}"`);
      return ms / 1000;
    });
  const profile = (name: string, v: unknown): string => {
    const p = String(v);
    if (!LOAD_PROFILES[p]) throw new SpecError(`${name}: unknown profile "${p}" (one of ${PROFILE_NAMES.join(", ")}, or --fio JOBFILE)`);
    return p;
  };

  const machines = num("--machines", flags.machines ?? doc.machines ?? 1, 1);
  const fioJobFile = flags.fio ?? (doc.fio as string | undefined);
  const via = String(flags.via ?? doc.via ?? (fioJobFile ? "nbd" : "generator"));
  if (via !== "generator" && via !== "nbd") throw new SpecError(`--via: must be generator or nbd, got "${via}"`);
  if (fioJobFile && via !== "nbd") throw new SpecError("--fio runs fio against the NBD exports: use it with --via nbd (or without --via)");
  if (fioJobFile) {
    let text: string;
    try {
      text = readFileSync(fioJobFile, "utf8");
    } catch (err) {
      throw new SpecError(`--fio: cannot read ${fioJobFile}: ${(err as Error).message}`);
    }
    if (!/^\s*\[[^\]]+\]/m.test(text)) throw new SpecError(`--fio: ${fioJobFile} has no [job] section`);
  }

  const defaultProfile = profile("--profile", flags.profile ?? doc.profile ?? "oltp");
  const defaultRate = rate("--rate", flags.rate ?? doc.rate ?? "5MB/s");
  const defaultDuration = duration("--duration", flags.duration ?? doc.duration ?? "30s");
  const stagesOf = (where: string, v: unknown, fallbackRate: number): Stage[] => {
    if (v === undefined) return [{ durationSeconds: defaultDuration, rateBytesPerSecond: fallbackRate }];
    if (!Array.isArray(v) || v.length === 0) throw new SpecError(`${where}: must be a list of { duration, rate }`);
    return v.map((s, i) => {
      const o = s as Record<string, unknown>;
      return {
        durationSeconds: duration(`${where}[${i}].duration`, o?.duration),
        rateBytesPerSecond: rate(`${where}[${i}].rate`, o?.rate ?? fallbackRate),
      };
    });
  };
  // --duration/--rate given on the command line replace the spec's stages.
  const stages = flags.duration || flags.rate ? stagesOf("stages", undefined, defaultRate) : stagesOf("stages", doc.stages, defaultRate);

  let groups: MachineGroup[];
  if (doc.groups !== undefined && !flags.profile) {
    if (!Array.isArray(doc.groups) || doc.groups.length === 0) throw new SpecError("groups: must be a list of { machines, profile, rate | stages }");
    groups = doc.groups.map((g, i) => {
      const o = (g ?? {}) as Record<string, unknown>;
      const where = `groups[${i}]`;
      const groupRate = o.rate !== undefined ? rate(`${where}.rate`, o.rate) : defaultRate;
      const names = Array.isArray(o.machines) ? o.machines.map(String) : undefined;
      return {
        count: names ? undefined : num(`${where}.machines`, o.machines ?? 1, 1),
        names,
        profile: profile(`${where}.profile`, o.profile ?? defaultProfile),
        stages: o.stages !== undefined ? stagesOf(`${where}.stages`, o.stages, groupRate) : o.rate !== undefined ? stagesOf(where, undefined, groupRate) : stages,
      };
    });
    const counted = groups.reduce((n, g) => n + (g.count ?? g.names!.length), 0);
    if (counted > machines) throw new SpecError(`groups name ${counted} machines but the test has ${machines} (--machines)`);
  } else {
    groups = [{ count: machines, profile: defaultProfile, stages }];
  }

  const thresholdExprs = [...((doc.thresholds as string[] | undefined) ?? []), ...(flags.threshold ?? [])];
  const thresholds = thresholdExprs.map((e) =>
    field("threshold", () => {
      try {
        return parseThreshold(String(e));
      } catch (err) {
        throw new SpecError((err as Error).message);
      }
    }),
  );
  const plan = (doc.plan ?? {}) as Record<string, unknown>;
  const growthText = String(flags.growth ?? plan.growth ?? "30%");
  const growthPercent = num("--growth", growthText.replace(/%$/, ""), 0, false);
  return {
    machines,
    via,
    fioJobFile,
    groups,
    thresholds,
    seed: num("seed", flags.seed ?? doc.seed ?? 1, 0),
    drainTimeoutSeconds: duration("drainTimeout", doc.drainTimeout ?? "300s"),
    diskSizeBytes: flags.diskSize || doc.diskSize ? field("--disk-size", () => parseSize(String(flags.diskSize ?? doc.diskSize))) : undefined,
    plan: {
      machines: num("--plan-machines", flags.planMachines ?? plan.machines ?? 100, 1),
      rpoSeconds: duration("--plan-rpo", flags.planRpo ?? plan.rpo ?? "15m"),
      growthPercent,
    },
  };
}

/** Total seconds of load (the longest group). */
export function loadSeconds(spec: LoadSpec): number {
  return Math.max(...spec.groups.map((g) => g.stages.reduce((n, s) => n + s.durationSeconds, 0)));
}
