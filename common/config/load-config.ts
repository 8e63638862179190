import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";

export interface LoadConfigSources {
  /** YAML file; missing keys fall back to defaults. */
  file?: string;
  /** Already-parsed command-line flags, nested like the file (undefined values are ignored). */
  flags?: Record<string, unknown>;
  /** Environment, for SRLAB_* variables (double underscore for nesting: SRLAB_TLS__CA_FILE). */
  env?: NodeJS.ProcessEnv;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Defaults (in the schema) < file < environment < flags, then validated by the schema. */
export function loadConfig<S extends z.ZodType>(schema: S, sources: LoadConfigSources = {}): z.infer<S> {
  let merged: Record<string, unknown> = {};
  if (sources.file) {
    let text: string;
    try {
      text = readFileSync(sources.file, "utf8");
    } catch (err) {
      throw new ConfigError(`cannot read config file ${sources.file}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text, { logLevel: "error" }) ?? {};
    } catch (err) {
      throw new ConfigError(`config file ${sources.file} is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
    }
    if (typeof parsed !== "object" || Array.isArray(parsed)) throw new ConfigError(`config file ${sources.file} must hold a mapping`);
    merged = deepMerge(merged, parsed as Record<string, unknown>);
  }
  if (sources.env) merged = deepMerge(merged, fromEnv(sources.env));
  if (sources.flags) merged = deepMerge(merged, sources.flags);
  const result = schema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new ConfigError(`invalid configuration${sources.file ? ` in ${sources.file}` : ""}: ${problems}`);
  }
  return result.data;
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith("SRLAB_") || value === undefined || key === "SRLAB_LOG_LEVEL") continue;
    const path = key.slice(6).split("__").map(camelCase);
    let node = out;
    for (const part of path.slice(0, -1)) {
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  }
  return out;
}

function camelCase(snake: string): string {
  return snake.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] = isPlainObject(prev) && isPlainObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
