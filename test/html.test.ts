import { describe, expect, test } from "vitest";
import {
  chart,
  chartGrid,
  escapeHtml,
  figures,
  formatBytes,
  formatDuration,
  formatRate,
  html,
  raw,
  renderPage,
  scriptJson,
  section,
  table,
  timeline,
} from "../common/html/index.js";

const hostile = `<script>alert("x")</script> & 'quoted'`;

describe("html toolkit: escaping", () => {
  test("text interpolated into markup is escaped, markup built by the toolkit is not", () => {
    const out = html`<p title="${hostile}">${hostile}${raw("<b>ok</b>")}</p>`.value;
    expect(out).not.toContain("<script>");
    expect(out).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;");
    expect(out).toContain("<b>ok</b>");
    expect(escapeHtml(null)).toBe("");
  });

  test("arrays render in order, null/undefined/false render as nothing", () => {
    expect(html`<ul>${[1, 2].map((i) => html`<li>${i}</li>`)}${null}${undefined}${false}</ul>`.value).toBe("<ul><li>1</li><li>2</li></ul>");
  });

  test("JSON in a script block cannot close the element and parses back to the same value", () => {
    const value = { name: "</script><script>alert(1)</script>", sep: "a\u2028b", amp: "&" };
    const out = scriptJson(value).value;
    expect(out).not.toMatch(/<|>|\u2028/);
    expect(JSON.parse(out)).toEqual(value);
  });
});

describe("html toolkit: page pieces", () => {
  test("the page is one self-contained document with a no-network CSP", () => {
    const page = renderPage({ title: `Run ${hostile}`, subtitle: "lab", body: section("Summary", html`<p>hi</p>`) });
    expect(page.startsWith("<!doctype html>")).toBe(true);
    expect(page).toContain("default-src 'none'");
    expect(page).not.toContain("<script>alert");
    expect(page).not.toMatch(/<(link|img|script)[^>]+(src|href)="(?!data:)/);
  });

  test("tables escape cells, right-align numeric columns and say when empty", () => {
    const t = table(
      [
        { header: "machine", cell: (r: { m: string; b: number }) => r.m },
        { header: "bytes", cell: (r) => formatBytes(r.b), numeric: true },
      ],
      [{ m: "<m1>", b: 3 * 1024 * 1024 }],
    ).value;
    expect(t).toContain("<td>&lt;m1&gt;</td>");
    expect(t).toContain('<td class="num">3.0 MiB</td>');
    expect(table([], [], "no machines").value).toContain("no machines");
  });

  test("the timeline places steps on one axis with their state and duration", () => {
    const t = timeline([
      { name: "prepare", startMs: 0, endMs: 1000, state: "succeeded" },
      { name: "failover", startMs: 1000, endMs: 4000, state: "failed", detail: "<boom>" },
    ]).value;
    expect(t).toContain("left:0.00%;width:25.00%");
    expect(t).toContain("left:25.00%;width:75.00%");
    expect(t).toContain('class="bar failed"');
    expect(t).toContain("3.00 s");
    expect(t).toContain("&lt;boom&gt;");
  });

  test("a page with charts inlines uPlot and the data of each chart", () => {
    const page = renderPage({
      title: "charts",
      charts: true,
      body: chartGrid([{ id: "rpo", title: "RPO", unit: "s", x: [0, 1, 2], series: [{ label: "m1", values: [0, null, 1.5] }] }]),
    });
    expect(page).toContain('id="chart-rpo"');
    expect(page).toMatch(/uPlot/);
    expect(page).toContain('"values":[0,null,1.5]');
    expect(page).not.toMatch(/<script[^>]+src=/);
  });

  test("a series that does not match x is refused", () => {
    expect(() => chart({ id: "a", title: "a", unit: "count", x: [0, 1], series: [{ label: "s", values: [1] }] })).toThrow(/one value per x/);
  });

  test("figures and formatting read as people expect", () => {
    expect(figures([{ label: "verified", value: "yes", kind: "pass" }]).value).toContain('class="figure pass"');
    expect(formatRate(20e6)).toBe("20.0 MB/s");
    expect(formatDuration(250)).toBe("250 ms");
    expect(formatDuration(125_000)).toBe("2 m 05 s");
    expect(formatBytes(1536)).toBe("1.5 KiB");
  });
});
