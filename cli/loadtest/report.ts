import type { AlertThresholds } from "../../proto/index.js";
import type { CapacityPlan } from "./capacity-plan.js";
import type { Histogram } from "./histogram.js";
import type { RunSample } from "./samples.js";
import type { RunSummary } from "./summary.js";
import type { ThresholdVerdict } from "./thresholds.js";

/** report.json: everything a script (or `--compare`) needs about one run. */
export interface LoadReport {
  kind: "srlab-loadtest";
  formatVersion: 1;
  id: string;
  startedAt: string;
  loadEndedAt: string;
  endedAt: string;
  spec: {
    machines: number;
    via: string;
    fioJobFile: string | null;
    groups: Array<{ machines: string[]; profile: string; stages: Array<{ durationSeconds: number; rateBytesPerSecond: number }> }>;
    thresholds: string[];
    seed: number;
    plan: { machines: number; rpoSeconds: number; growthPercent: number };
  };
  environment: {
    cpus: number;
    cpuModel: string;
    memoryBytes: number;
    node: string;
    platform: string;
    srlabVersion: string;
    storage: string;
    timeUnitSeconds: number;
    processServers: string[];
    alertThresholds: AlertThresholds | null;
  };
  phases: Array<{ name: string; startMs: number; endMs: number; state: "succeeded" | "failed" }>;
  machines: Array<{
    name: string;
    profile: string;
    processServer: string;
    disks: Array<{ index: number; sizeBytes: number; sourceSha256: string; replicaSha256: string | null; equal: boolean }>;
    verified: boolean;
  }>;
  samples: RunSample[];
  latency: ReturnType<Histogram["toJSON"]> | null;
  summary: RunSummary;
  thresholds: ThresholdVerdict[];
  capacityPlan: CapacityPlan;
  verdict: { passed: boolean; exitCode: number; reason: string };
}

export function isLoadReport(v: unknown): v is LoadReport {
  return typeof v === "object" && v !== null && (v as LoadReport).kind === "srlab-loadtest" && Array.isArray((v as LoadReport).samples);
}
