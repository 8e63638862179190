import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Page } from "puppeteer-core";

/** Debian's Firefox ESR; CI installs it. Never a downloaded browser. */
export const FIREFOX = process.env.SRLAB_FIREFOX ?? "/usr/bin/firefox-esr";

/** Why Firefox tests cannot run here, or undefined when they can (`ctx.skip(reason)`). */
export function firefoxMissing(): string | undefined {
  return existsSync(FIREFOX) ? undefined : `firefox-esr not installed (${FIREFOX})`;
}

export interface FirefoxPage {
  page: Page;
  /** Console errors and uncaught page errors, as they happened. */
  errors: string[];
}

/**
 * Runs `fn` with a page in a fresh headless Firefox (its own profile), driven over WebDriver
 * BiDi by puppeteer-core: Playwright drives only its own patched Firefox builds, and the stock
 * one is what users have. The browser is always closed.
 */
export async function withFirefox<T>(fn: (opened: FirefoxPage) => Promise<T>): Promise<T> {
  const profile = await mkdtemp(join(tmpdir(), "srlab-firefox-"));
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: FIREFOX,
    headless: true,
    userDataDir: profile,
    // Nothing that phones home: a page that works here works offline.
    extraPrefsFirefox: { "app.update.enabled": false, "browser.shell.checkDefaultBrowser": false, "network.captive-portal-service.enabled": false },
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("console", (msg) => {
      if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
    });
    page.on("pageerror", (err) => errors.push(`page error: ${(err as Error).message}`));
    return await fn({ page, errors });
  } finally {
    await browser.close().catch(() => {});
    await rm(profile, { recursive: true, force: true });
  }
}
