import { execFile } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect } from "vitest";
import { browserMissing, chartStates, type OpenedPage, openPage } from "../support/browser.js";
import { type CliResult, srlab, srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { checkCaughtUpReplicas } from "../support/convergence.js";
import { firefoxMissing, withFirefox } from "../support/firefox.js";
import { hasTool } from "../support/images.js";
import { test } from "../support/lab.js";

// The web dashboard against a real lab, in Debian's Chromium: every component on the topology,
// RPO rising under fio and falling back to 0 without a reload, a tag on the points timeline,
// 401 and nothing shown without the credential, and no console error on any page.

let dir: string;
const SCREENSHOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "docs", "images", "dashboard.png");
const VERSION = (JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), "..", "..", "package.json"), "utf8")) as { version: string }).version;
const PAGES = ["/", "/machines", "/machines/machine-1", "/process-servers", "/jobs", "/alerts"];

interface Link {
  dashboardUrl: string;
  loginUrl: string;
  expiresAt: string;
}
interface Status {
  components: Array<{ name: string }>;
  machines: Array<{ name: string; disks: Array<{ nbd: string }> }>;
}

let up: CliResult;
let origin = "";

test.beforeAll(async ({ startLab }) => {
  // Actions on (dashboard.actions, from the environment as a service's unit could set it).
  ({ dir, up } = await startLab({ name: "dash", up: ["--disk-size", "32MiB", "--time-unit", "1s"], env: { SRLAB_DASHBOARD__ACTIONS: "true" } }));
  await srlabOk(["protect", "machine-1", "--wait", "--dir", dir], 300_000);
  origin = new URL((await srlabJson<Link>(["dashboard", "--dir", dir])).dashboardUrl).origin;
});

afterAll(() => checkCaughtUpReplicas(dir));

/** A browser logged in through a fresh one-time link from `srlab dashboard`, on `path`. */
async function loggedIn(path: string): Promise<OpenedPage> {
  const link = await srlabJson<Link>(["dashboard", "--dir", dir]);
  const opened = await openPage(link.loginUrl, { allowOrigins: [origin], width: 1400, height: 1000 });
  // The login page moves on to the dashboard by itself.
  await opened.page.waitForURL(`${origin}/`);
  if (path !== "/") await opened.page.goto(`${origin}${path}`);
  await opened.page.waitForFunction(() => document.getElementById("live-state")?.textContent === "live");
  return opened;
}

const skipWithoutBrowser = (ctx: { skip: (why: string) => void }) => {
  const missing = browserMissing();
  if (missing) ctx.skip(missing);
};

describe("srlab dashboard", () => {
  test("srlab up prints the dashboard's address and a login link; srlab dashboard prints a new link each time", async () => {
    expect(up.stderr).toMatch(new RegExp(`dashboard ${origin}/`));
    expect(up.stderr).toMatch(/log in: http:\/\/127\.0\.0\.1:\d+\/login\?token=/);
    const a = await srlabOk(["dashboard", "--dir", dir]);
    const b = await srlabOk(["dashboard", "--dir", dir]);
    expect(a.stdout.trim()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/login\?token=[\w-]+$/);
    expect(b.stdout.trim()).not.toBe(a.stdout.trim());
  });

  test("a request without the credential gets 401 and shows nothing", async ({ skip }) => {
    for (const path of [...PAGES, "/events?view=/machines"]) {
      const r = await fetch(`${origin}${path}`);
      expect(r.status, path).toBe(401);
      const body = await r.text();
      expect(body).not.toContain("machine-1");
      expect(body).not.toContain("process-server-1");
    }
    skipWithoutBrowser({ skip });
    const opened = await openPage(`${origin}/machines`, { allowOrigins: [origin] });
    try {
      const text = await opened.page.textContent("body");
      expect(text).toContain("srlab dashboard");
      expect(text).not.toContain("machine-1");
    } finally {
      await opened.close();
    }
  });

  test("the topology shows every component of the lab", async ({ skip }) => {
    skipWithoutBrowser({ skip });
    const status = await srlabJson<Status>(["status", "--dir", dir]);
    const opened = await loggedIn("/");
    try {
      for (const c of status.components) {
        await opened.page.waitForSelector(`[data-component="${c.name}"]`, { timeout: 30_000 });
        // Each daemon reports srlab's version when it registers.
        expect(await opened.page.locator(`[data-component="${c.name}"] dd`).allTextContents(), c.name).toContain(VERSION);
      }
      expect(await opened.page.locator('[data-component="storage"]').count()).toBe(1);
      expect(await opened.page.locator('[data-role="master-target"]').count()).toBe(1);
      expect(await opened.page.locator('[data-role="process-server"]').count()).toBe(2);
      opened.assertNoErrors();
    } finally {
      await opened.close();
    }
  });

  test("fio through the NBD export raises the machine's RPO, which returns to 0; a tag appears on the points timeline; no reload", async ({ skip }) => {
    skipWithoutBrowser({ skip });
    if (!hasTool("fio")) return skip("fio not installed (apt-get install fio)");
    const status = await srlabJson<Status>(["status", "--dir", dir]);
    const nbd = status.machines.find((m) => m.name === "machine-1")!.disks[0]!.nbd;
    const opened = await loggedIn("/machines/machine-1");
    const { page } = opened;
    try {
      // A marker on this document: a reload would lose it.
      await page.evaluate(() => {
        (window as unknown as { sameDocument: boolean }).sameDocument = true;
      });
      const rpo = () => Number(document.querySelector("[data-rpo-seconds]")?.getAttribute("data-rpo-seconds") ?? Number.NaN);
      expect(await page.evaluate(rpo)).toBe(0);
      const fio = promisify(execFile)(
        "fio",
        ["--name=dashboard", "--ioengine=nbd", `--uri=${nbd}`, "--rw=randwrite", "--bs=64k", "--size=24m", "--rate=3m", "--iodepth=4"],
        { timeout: 120_000 },
      );
      // Functions, not strings: the dashboard's CSP forbids eval, in tests as for everyone.
      await page.waitForFunction(() => Number(document.querySelector("[data-rpo-seconds]")?.getAttribute("data-rpo-seconds")) > 0, undefined, { timeout: 60_000, polling: 100 });
      await fio;
      await page.waitForFunction(() => document.querySelector("[data-rpo-seconds]")?.getAttribute("data-rpo-seconds") === "0", undefined, { timeout: 120_000, polling: 250 });
      // The RPO chart gained the rise from the live stream too.
      const series = await page.evaluate(() => (window as unknown as { srlabCharts: { get(id: string): number[][] } }).srlabCharts.get("rpo")[1]!);
      expect(Math.max(...series.filter((v) => v !== null))).toBeGreaterThan(0);

      await srlabOk(["tag", "machine-1", "--name", "dashboard-tag", "--dir", dir], 120_000);
      await page.waitForSelector('.strip-marker[data-kind="app-consistent"][data-label="dashboard-tag"]', { timeout: 60_000 });
      expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
      opened.assertNoErrors();
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: false });
    } finally {
      await opened.close();
    }
  });

  test("no page has a console error, and every chart is drawn", async ({ skip }) => {
    skipWithoutBrowser({ skip });
    const opened = await loggedIn("/");
    try {
      for (const path of PAGES) {
        await opened.page.goto(`${origin}${path}`);
        await opened.page.waitForFunction(() => document.getElementById("live-state")?.textContent === "live");
        // One live update has arrived and been applied.
        await opened.page.waitForFunction(() => document.body.hasAttribute("data-updated"), undefined, { timeout: 30_000 });
        for (const c of await chartStates(opened.page)) expect(c.drawn, `${path} chart ${c.id}`).not.toBe("error");
      }
      opened.assertNoErrors();
    } finally {
      await opened.close();
    }
  });

  test("every page works in Firefox too: logged in by the one-time link, live, no console error", async ({ skip }) => {
    const missing = firefoxMissing();
    if (missing) return skip(missing);
    const link = await srlabJson<Link>(["dashboard", "--dir", dir]);
    await withFirefox(async ({ page, errors }) => {
      await page.goto(link.loginUrl);
      // The login page moves on to the dashboard by itself.
      await page.waitForFunction((o: string) => location.href === `${o}/`, { timeout: 30_000 }, origin);
      for (const path of PAGES) {
        await page.goto(`${origin}${path}`);
        await page.waitForFunction(() => document.getElementById("live-state")?.textContent === "live", { timeout: 30_000 });
        await page.waitForFunction(() => document.body.hasAttribute("data-updated"), { timeout: 30_000 });
        expect(await page.evaluate(() => document.body.textContent ?? ""), path).not.toContain("Log in to the srlab dashboard");
        const charts = await page.evaluate(() => [...document.querySelectorAll("[data-chart]")].map((el) => el.getAttribute("data-drawn")));
        for (const drawn of charts) expect(drawn, path).not.toBe("error");
      }
      expect(errors).toEqual([]);
    });
  });

  test("an action needs its confirmation page, and passes the same checks as the CLI", async ({ skip }) => {
    skipWithoutBrowser({ skip });
    const opened = await loggedIn("/machines/machine-1");
    const { page } = opened;
    try {
      // A protected machine is offered a tag, a resync and a test failover, not protection.
      await page.waitForSelector('[data-action="tag"]');
      expect(await page.locator("[data-action]").evaluateAll((els) => els.map((e) => e.getAttribute("data-action")))).toEqual(["tag", "resync", "test-failover"]);
      // Cancel changes nothing.
      await page.click('[data-action="tag"]');
      await page.waitForSelector('[data-confirm="tag"]');
      await page.click("[data-cancel]");
      await page.waitForURL(`${origin}/machines/machine-1`);
      // Confirmed: the point is taken, as by srlab tag.
      await page.click('[data-action="tag"]');
      await page.fill('input[name="tag"]', "from-the-dashboard");
      await page.click('[data-confirm="tag"]');
      const jobId = await (await page.waitForSelector("[data-started-job]")).getAttribute("data-started-job");
      expect(jobId).toMatch(/^[0-9a-f-]{36}$/);
      await waitUntil("the tag to become a point", async () => {
        const { points } = await srlabJson<{ points: Array<{ tagName: string | null }> }>(["points", "machine-1", "--dir", dir]);
        return points.some((p) => p.tagName === "from-the-dashboard");
      }, 120_000);
      opened.assertNoErrors();
      // The handlers' own refusal, word for word the CLI's, for a machine that is already protected
      // (answered 409, which the browser logs: no more error checks after this).
      const cli = await srlab(["protect", "machine-1", "--dir", dir]);
      expect(cli.code).toBe(1);
      await page.goto(`${origin}/machines/machine-1/actions/protect`);
      await page.click('[data-confirm="protect"]');
      const refusal = (await (await page.waitForSelector("[data-action-error]")).textContent())!;
      expect(cli.stderr).toContain(refusal.trim());

      // A post that did not come from the session's own form changes nothing.
      const cookie = (await page.context().cookies()).find((c) => c.name === "srlab_session")!;
      const forged = await fetch(`${origin}/machines/machine-1/actions/resync`, {
        method: "POST",
        headers: { cookie: `srlab_session=${cookie.value}`, "content-type": "application/x-www-form-urlencoded" },
        body: "token=forged",
      });
      expect(forged.status).toBe(403);
      const jobs = await srlabJson<Array<{ type: string }>>(["jobs", "--machine", "machine-1", "--dir", dir]);
      expect(jobs.filter((j) => j.type === "Resync")).toEqual([]);
      // Without a credential, no action page at all.
      expect((await fetch(`${origin}/machines/machine-1/actions/tag`)).status).toBe(401);
    } finally {
      await opened.close();
    }
  });
});
