import { alertsPage } from "./alerts-page.js";
import { jobsPage } from "./jobs-page.js";
import type { DashboardPage } from "./layout.js";
import { machinePage } from "./machine-page.js";
import { machinesPage } from "./machines-page.js";
import { processServersPage } from "./process-servers-page.js";
import type { Snapshot } from "./snapshot.js";
import { topologyPage } from "./topology-page.js";

/** The page at a path, or undefined (404) for anything else. */
export function pageAt(path: string, snap: Snapshot): DashboardPage | undefined {
  switch (path) {
    case "/":
      return topologyPage(snap);
    case "/machines":
      return machinesPage(snap);
    case "/process-servers":
      return processServersPage(snap);
    case "/jobs":
      return jobsPage(snap);
    case "/alerts":
      return alertsPage(snap);
  }
  const m = /^\/machines\/([^/]+)$/.exec(path);
  if (m) {
    let name: string;
    try {
      name = decodeURIComponent(m[1]!);
    } catch {
      return undefined;
    }
    return machinePage(snap, name);
  }
  return undefined;
}
