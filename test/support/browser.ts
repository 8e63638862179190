import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";

/** Debian's Chromium; CI installs it. Never a downloaded browser. */
export const CHROMIUM = process.env.SRLAB_CHROMIUM ?? "/usr/bin/chromium";

/** Why browser tests cannot run here, or undefined when they can (`ctx.skip(reason)`). */
export function browserMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `chromium not installed (${CHROMIUM})`;
}

/**
 * Flags for a quiet, reproducible headless Chromium: no sandbox (containers, root), no GPU,
 * and nothing that phones home or syncs, so a page that works here works offline.
 */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

export interface OpenedPage {
  page: Page;
  /** Console errors, uncaught page errors and failed or network requests, as they happened. */
  errors: string[];
  /** Requests that left the machine (anything but file:, data:, blob: and about:). */
  networkRequests: string[];
  /** Throws listing every error (and network request, when the page must be offline). */
  assertNoErrors(options?: { offline?: boolean }): void;
  screenshot(path: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a file path or URL in a fresh headless Chromium (new `--user-data-dir` each time) and
 * records what went wrong while it loads. Requests to the network are blocked and recorded,
 * which is how a test proves a report works offline.
 */
export interface OpenPageOptions {
  width?: number;
  height?: number;
  /**
   * Origins the page may reach (a dashboard served by the lab on loopback, `http://127.0.0.1:PORT`):
   * their requests go through and are not counted as network requests; their failures are errors.
   */
  allowOrigins?: string[];
}

export async function openPage(target: string, options: OpenPageOptions = {}): Promise<OpenedPage> {
  const profile = await mkdtemp(join(tmpdir(), "srlab-chromium-"));
  let context: BrowserContext;
  try {
    // launchPersistentContext is Playwright's way of passing --user-data-dir.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
    });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
  const errors: string[] = [];
  const networkRequests: string[] = [];
  const allowed = (url: string) => (options.allowOrigins ?? []).some((o) => url === o || url.startsWith(`${o.replace(/\/$/, "")}/`));
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (/^(file|data|blob|about):/.test(url) || allowed(url)) return route.continue();
    networkRequests.push(url);
    return route.abort("blockedbyclient");
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`page error: ${err.message}`));
  page.on("requestfailed", (req) => {
    // An event stream is aborted whenever its page is left: that is no failure.
    if (req.resourceType() === "eventsource" && req.failure()?.errorText === "net::ERR_ABORTED") return;
    if (/^(file|data|blob|about):/.test(req.url()) || allowed(req.url())) errors.push(`request failed: ${req.url()} (${req.failure()?.errorText})`);
  });
  const url = /^[a-z]+:\/\//i.test(target) ? target : pathToFileURL(resolve(target)).href;
  await page.goto(url, { waitUntil: "load" });
  return {
    page,
    errors,
    networkRequests,
    assertNoErrors(o = {}) {
      const problems = [...errors, ...(o.offline === false ? [] : networkRequests.map((u) => `network request: ${u}`))];
      if (problems.length > 0) throw new Error(`page ${target} had errors:\n${problems.join("\n")}`);
    },
    async screenshot(path: string) {
      await page.screenshot({ path, fullPage: true });
    },
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Opens a page, runs `fn`, and always closes the browser. */
export async function withPage<T>(target: string, fn: (opened: OpenedPage) => Promise<T>, options?: OpenPageOptions): Promise<T> {
  const opened = await openPage(target, options);
  try {
    return await fn(opened);
  } finally {
    await opened.close();
  }
}

/** The state of every chart drawn by common/html: id, `data-drawn` and points drawn. */
export async function chartStates(page: Page): Promise<Array<{ id: string; drawn: string | null; points: number }>> {
  return page.$$eval("[data-chart]", (els) =>
    els.map((el) => ({
      id: el.getAttribute("data-chart") ?? "",
      drawn: el.getAttribute("data-drawn"),
      points: Number(el.getAttribute("data-points") ?? 0),
    })),
  );
}
