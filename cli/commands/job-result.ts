import { planOperations, prerequisiteCodes, pushInstallRoles, rehearsalResults, verifyTargets } from "../../common/enum-names/index.js";
import type { JobResult } from "../../proto/index.js";

/**
 * A job's typed result as `--json` shows it: the result of the job's kind with every field
 * (zeros and empty lists included, so scripts read a stable shape) and enums by their readable
 * names; null for a job without one.
 */
export function resultDocument(result: JobResult | undefined): object | null {
  const kind = result?.kind;
  switch (kind?.$case) {
    case undefined:
      return null;
    case "verify":
      return { ...kind.value, target: verifyTargets.nameOf(kind.value.target) ?? null };
    case "planRun": {
      const r = kind.value;
      const orNull = <T>(v: T | undefined): T | null => v ?? null;
      return {
        ...r,
        operation: planOperations.nameOf(r.operation) ?? null,
        machines: r.machines.map((m) => ({ ...m, rpoSeconds: orNull(m.rpoSeconds), rtoSeconds: orNull(m.rtoSeconds) })),
        targets: {
          rpoSeconds: orNull(r.targets?.rpoSeconds),
          rtoSeconds: orNull(r.targets?.rtoSeconds),
          rpoMet: orNull(r.targets?.rpoMet),
          rtoMet: orNull(r.targets?.rtoMet),
        },
      };
    }
    case "rehearsal":
      return { ...kind.value, result: rehearsalResults.nameOf(kind.value.result) ?? null };
    case "pushInstall":
      return {
        ...kind.value,
        role: pushInstallRoles.nameOf(kind.value.role) ?? null,
        facts: kind.value.facts ?? null,
        failures: kind.value.failures.map((f) => ({ code: prerequisiteCodes.nameOf(f.code) ?? null, message: f.message })),
      };
    default:
      return kind?.value ?? null;
  }
}
