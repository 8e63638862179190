import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { REPO_ROOT } from "./support/dist.js";
import { metricNames } from "./support/promql-metrics.js";

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }>;
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
const DS_UID = "${datasource}";

const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, "deploy/grafana/srlab.json"), "utf8")) as {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
  panels: Panel[];
};

describe("Grafana dashboard deploy/grafana/srlab.json", () => {
  test("provisions as is: a stable uid and a Prometheus datasource variable every query uses", () => {
    expect(dashboard.uid).toBe("srlab");
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const ds = dashboard.templating.list.find((v) => v.type === "datasource");
    expect(ds).toMatchObject({ name: "datasource", query: "prometheus" });
    for (const v of dashboard.templating.list.filter((x) => x.type === "query")) expect(v).toMatchObject({ datasource: { uid: DS_UID } });
    for (const p of dashboard.panels.filter((x) => x.type !== "row")) {
      expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: DS_UID });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource?.uid, p.title).toBe(DS_UID);
    }
  });

  test("panels have unique ids and refIds and tile a 24-column grid without overlapping", () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          expect(cells.has(`${i},${j}`), `${p.title} overlaps another panel`).toBe(false);
          cells.add(`${i},${j}`);
        }
      }
      const refs = (p.targets ?? []).map((t) => t.refId);
      expect(new Set(refs).size, p.title).toBe(refs.length);
    }
  });

  test("covers what the issue asks: RPO per machine, throughput, cache use, backlog, health", () => {
    const all = dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr)));
    for (const name of ["srlab_cs_machine_rpo_seconds", "srlab_agent_acked_bytes_total", "srlab_ps_cache_bytes", "srlab_ps_upload_backlog_bytes", "srlab_cs_daemon_health_severity"]) {
      expect(all).toContain(name);
    }
    // Every query reads at least one metric (the e2e test checks the daemons export each one).
    for (const p of dashboard.panels) for (const t of p.targets ?? []) expect(metricNames(t.expr).length, t.expr).toBeGreaterThan(0);
  });

  test("the PromQL reader finds metric names and nothing else", () => {
    expect(metricNames('max by (machine) (srlab_ps_rpo_seconds * on (machine_id) group_left (machine) srlab_cs_machine_info{machine=~"$machine"})')).toEqual([
      "srlab_ps_rpo_seconds",
      "srlab_cs_machine_info",
    ]);
    expect(metricNames("histogram_quantile(0.95, sum by (le) (rate(srlab_ps_segment_upload_duration_seconds_bucket[5m])))")).toEqual([
      "srlab_ps_segment_upload_duration_seconds_bucket",
    ]);
    expect(metricNames('up{srlab_role!=""}')).toEqual(["up"]);
  });
});
