/**
 * Human units for workload flags and config files.
 * Sizes: "4096", "4k", "512M", "1GiB" are binary (1024ⁿ, like qemu-img and fio); "20MB", "1GB" with
 * a B after the prefix are decimal (1000ⁿ, like disk vendors and network rates).
 */

const PREFIXES = "kmgtpe";

/** "1GiB" → 1073741824, "512M" → 536870912, "20MB" → 20000000, "4096" → 4096. */
export function parseSize(input: string | number): number {
  if (typeof input === "number") return checkNonNegative(input, String(input));
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(?:([kmgtpe])(i?)(b?)|(b?))\s*$/i.exec(input);
  if (!m) throw new RangeError(`invalid size "${input}" (examples: 4096, 4k, 512M, 1GiB, 20MB)`);
  const n = Number(m[1]);
  const prefix = m[2]?.toLowerCase();
  if (!prefix) return checkNonNegative(Math.round(n), input);
  const power = PREFIXES.indexOf(prefix) + 1;
  const decimal = m[3] === "" && m[4] !== "";
  return checkNonNegative(Math.round(n * (decimal ? 1000 : 1024) ** power), input);
}

/** "20MB/s" → 20000000 bytes per second; also "20MiB/s", "512k/s", "20MBps", "20MB". */
export function parseRate(input: string | number): number {
  if (typeof input === "number") return checkNonNegative(input, String(input));
  const m = /^(.*?)(?:\/\s*s(?:ec)?|ps)?\s*$/i.exec(input.trim());
  if (!m || m[1] === "") throw new RangeError(`invalid rate "${input}" (examples: 20MB/s, 512KiB/s)`);
  try {
    return parseSize(m[1]!);
  } catch {
    throw new RangeError(`invalid rate "${input}" (examples: 20MB/s, 512KiB/s)`);
  }
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds from "500ms", "30s", "2m", "1h", "1m30s"; a bare number means seconds. */
export function parseDuration(input: string | number): number {
  if (typeof input === "number") return checkNonNegative(input * 1000, String(input));
  const s = input.trim().toLowerCase();
  if (/^\d+(?:\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/gy;
  let total = 0;
  let at = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    at = re.lastIndex;
  }
  if (s === "" || at !== s.length) throw new RangeError(`invalid duration "${input}" (examples: 500ms, 30s, 2m, 1m30s)`);
  return total;
}

function checkNonNegative(n: number, input: string): number {
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`invalid value "${input}"`);
  return n;
}
