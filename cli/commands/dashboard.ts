import { spawn } from "node:child_process";
import { AdminClient } from "../admin-client.js";
import { printJson } from "../output.js";

export interface DashboardLink {
  dashboardUrl: string;
  loginUrl: string;
  expiresAt: string;
}

/** A fresh one-time login link from the lab's configuration server. */
export async function dashboardLink(dir: string): Promise<DashboardLink> {
  return AdminClient.using(dir, async (client) => {
    const r = await client.call(client.client.createDashboardLogin, {});
    return { dashboardUrl: r.dashboardUrl, loginUrl: r.loginUrl, expiresAt: r.expiresAt?.toISOString() ?? "" };
  });
}

/**
 * What `srlab up` prints about the dashboard: its address and a first login link. A lab whose
 * configuration server runs without the dashboard gets one line saying so, never a failed `up`.
 */
export async function dashboardLines(dir: string): Promise<string[]> {
  try {
    const link = await dashboardLink(dir);
    return [`dashboard ${link.dashboardUrl}`, `  log in: ${link.loginUrl}  (works once; srlab dashboard prints another)`];
  } catch (err) {
    return [`dashboard not available: ${(err as Error).message}`];
  }
}

/** `srlab dashboard`: prints a one-time login link, or opens it in the desktop's browser with --open. */
export async function dashboardCommand(dir: string, o: { open?: boolean; json?: boolean }): Promise<void> {
  const link = await dashboardLink(dir);
  if (o.json) {
    printJson(link);
    return;
  }
  if (o.open && (await openInBrowser(link.loginUrl))) {
    process.stderr.write(`opened ${link.dashboardUrl} in your browser\n`);
    return;
  }
  if (o.open) process.stderr.write("could not start xdg-open: open this link in a browser yourself\n");
  console.log(link.loginUrl);
  process.stderr.write(`one-time login link to ${link.dashboardUrl}, valid until ${link.expiresAt}; it starts a browser session\n`);
}

/** Starts xdg-open detached; false when it is missing or fails at once. */
function openInBrowser(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn("xdg-open", [url], { stdio: "ignore", detached: true });
    child.once("error", () => resolve(false));
    child.once("exit", (code) => resolve(code === 0));
    child.unref();
  });
}
