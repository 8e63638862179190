// Small conversions between SQLite cells and proto values, shared by the table modules.
import { healthIssueCodes } from "../../common/enum-names/index.js";
import { type HealthIssue, HealthIssueCode } from "../../proto/index.js";

export function toMillis(d: Date | undefined): number | null {
  return d === undefined ? null : d.getTime();
}

export function fromMillis(ms: number | null | undefined): Date | undefined {
  return ms === null || ms === undefined ? undefined : new Date(ms);
}

export function toBool(v: number | null | undefined): boolean {
  return v === 1;
}

export function fromBool(b: boolean): number {
  return b ? 1 : 0;
}

/** Empty proto strings mean "unset"; store them as NULL so foreign keys stay meaningful. */
export function nullIfEmpty(s: string | undefined): string | null {
  return s === undefined || s === "" ? null : s;
}

export function parseJson<T>(text: string | null | undefined, fallback: T): T {
  if (text === null || text === undefined || text === "") return fallback;
  return JSON.parse(text) as T;
}

/** ts-proto enums carry UNRECOGNIZED = -1 and reverse mappings; accept only real values. */
export function isEnumValue(e: object, v: number): boolean {
  return Number.isInteger(v) && v >= 0 && String(v) in e;
}

/**
 * Health issues kept as JSON. Rows written before HealthIssue.code became an enum hold the code's
 * name ("CACHE_FREE_SPACE_LOW"); they read back as the enum value, an unknown name as UNSPECIFIED.
 */
export function parseHealthIssues(text: string | null | undefined): HealthIssue[] {
  return parseJson<Array<Omit<HealthIssue, "code"> & { code: HealthIssueCode | string }>>(text, []).map((i) => ({
    ...i,
    code: typeof i.code === "number" ? i.code : healthIssueCodeOf(i.code),
  }));
}

function healthIssueCodeOf(name: string): HealthIssueCode {
  return healthIssueCodes.has(name) ? healthIssueCodes.parse(name) : HealthIssueCode.HEALTH_ISSUE_CODE_UNSPECIFIED;
}
