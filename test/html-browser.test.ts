import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { chartGrid, figures, html, renderPage, section, timeline } from "../common/html/index.js";
import { browserMissing, chartStates, withPage } from "./support/browser.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "srlab-html-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function samplePage(): string {
  const x = Array.from({ length: 60 }, (_, i) => i);
  return renderPage({
    title: "Sample report",
    subtitle: "every kind of piece the toolkit builds",
    charts: true,
    body: [
      figures([{ label: "verified", value: "yes", kind: "pass" }]),
      section("Steps", timeline([
        { name: "load", startMs: 0, endMs: 40_000, state: "succeeded" },
        { name: "drain", startMs: 40_000, endMs: 60_000, state: "failed", detail: "replica differs" },
      ])),
      section("Charts", chartGrid([
        { id: "throughput", title: "Throughput", unit: "bytes/s", x, series: [
          { label: "captured", values: x.map((i) => 5e6 + (i % 7) * 1e5) },
          { label: "uploaded (old run)", values: x.map((i) => (i % 5 === 0 ? null : 4e6)), dashed: true },
        ] },
        { id: "cache", title: "Cache free", unit: "%", x, series: [{ label: "ps-1", values: x.map((i) => 100 - i) }],
          thresholds: [{ label: "warning 30%", value: 30, level: "warning" }, { label: "critical 25%", value: 25, level: "critical" }] },
        { id: "clock", title: "Clock axis", unit: "s", xKind: "time", x: x.map((i) => 1_800_000_000 + i), series: [{ label: "rpo", values: x.map((i) => i / 10) }] },
        { id: "latency", title: "Latency", unit: "count", kind: "bars", xKind: "category", x: [0, 1, 2], xLabels: ["<1 ms", "<2 ms", "<4 ms"], series: [{ label: "writes", values: [10, 40, 5] }] },
      ])),
    ],
  });
}

describe("html toolkit in a real browser", () => {
  test("a sample page loads offline, draws every chart with data and logs no errors", async (ctx) => {
    const missing = browserMissing();
    if (missing) return ctx.skip(missing);
    const file = join(dir, "sample.html");
    await writeFile(file, samplePage());
    await withPage(file, async (opened) => {
      await opened.page.waitForFunction(() => document.querySelectorAll("[data-chart]:not([data-drawn])").length === 0);
      const charts = await chartStates(opened.page);
      expect(charts.map((c) => c.id)).toEqual(["throughput", "cache", "clock", "latency"]);
      for (const c of charts) {
        expect(c.drawn, c.id).toBe("true");
        expect(c.points, c.id).toBeGreaterThan(0);
      }
      expect(await opened.page.locator("[data-chart] canvas").count()).toBe(4);
      opened.assertNoErrors({ offline: true });
      const shot = join(dir, "sample.png");
      await opened.screenshot(shot);
      expect((await stat(shot)).size).toBeGreaterThan(10_000);
    });
  });

  test("the harness catches script errors and network requests", async (ctx) => {
    const missing = browserMissing();
    if (missing) return ctx.skip(missing);
    const file = join(dir, "broken.html");
    await writeFile(
      file,
      html`<!doctype html><html><body><img src="http://192.0.2.1/pixel.png"><script>console.error("boom"); undefinedFunction();</script></body></html>`.value,
    );
    await withPage(file, async (opened) => {
      await opened.page.waitForTimeout(200);
      expect(() => opened.assertNoErrors()).toThrow(/boom[\s\S]*undefinedFunction[\s\S]*network request: http:\/\/192\.0\.2\.1/);
    });
  });
});
