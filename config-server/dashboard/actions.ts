import { createHmac, timingSafeEqual } from "node:crypto";
import { html, type SafeHtml } from "../../common/html/index.js";
import { type Job, type Machine, ReplicationState } from "../../proto/index.js";

/** What the dashboard can change, when `dashboard.actions` is on: the verbs a lab engineer uses most. */
export const ACTION_NAMES = ["protect", "tag", "resync", "test-failover", "cleanup"] as const;
export type ActionName = (typeof ACTION_NAMES)[number];

export interface ActionParams {
  /** test-failover: the isolated Azure network. */
  network?: string;
  /** tag: the app-consistent point's name (empty: one is made up, as by the CLI). */
  tag?: string;
}

/**
 * Runs an action through the AdminService's own handlers, so it passes the same checks (state,
 * network, machine) and starts the same job as the CLI's call would.
 */
export interface DashboardActions {
  run(action: ActionName, machine: string, params: ActionParams): Promise<Job>;
  /** Azure networks a test failover can go into. */
  azureNetworks(): string[];
}

interface ActionText {
  title: string;
  /** What the confirmation page says will happen. */
  effect: string;
  /** The CLI command that does the same. */
  cli: (machine: string) => string;
}

export const ACTIONS: Record<ActionName, ActionText> = {
  protect: {
    title: "Enable protection",
    effect: "Starts initial replication of every disk, then continuous replication, with the default policy.",
    cli: (m) => `srlab protect ${m}`,
  },
  tag: {
    title: "App-consistent point",
    effect: "Runs the pre-freeze hooks, inserts a tag into the write stream and runs the post-thaw hooks.",
    cli: (m) => `srlab tag ${m}`,
  },
  resync: {
    title: "Resync",
    effect: "Compares block checksums of every disk with its replica and sends the blocks that differ.",
    cli: (m) => `srlab resync ${m}`,
  },
  "test-failover": {
    title: "Test failover",
    effect: "Creates a test machine in the isolated network from the latest recovery point; replication keeps running.",
    cli: (m) => `srlab failover ${m} --test --network NETWORK`,
  },
  cleanup: {
    title: "Clean up test failover",
    effect: "Deletes the test failover's machine and disks.",
    cli: (m) => `srlab failover-cleanup ${m}`,
  },
};

export function isActionName(s: string): s is ActionName {
  return (ACTION_NAMES as readonly string[]).includes(s);
}

/** The actions that make sense for a machine in its current state (the handlers check again). */
export function offeredActions(m: Machine): ActionName[] {
  const out: ActionName[] = [];
  const s = m.state;
  if (s === ReplicationState.REPLICATION_STATE_UNPROTECTED) out.push("protect");
  if (s === ReplicationState.REPLICATION_STATE_PROTECTED) out.push("tag");
  if (s === ReplicationState.REPLICATION_STATE_PROTECTED || s === ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED) out.push("resync");
  if (s === ReplicationState.REPLICATION_STATE_PROTECTED && !m.testFailoverActive) out.push("test-failover");
  if (m.testFailoverActive) out.push("cleanup");
  return out;
}

/** The machine page's buttons: each leads to a confirmation page, never straight to a change. */
export function actionButtons(m: Machine): SafeHtml {
  const offered = offeredActions(m);
  if (offered.length === 0) return html`<p class="reason">no action for a machine in this state</p>`;
  const base = `/machines/${encodeURIComponent(m.name)}/actions/`;
  return html`<p class="actions">${offered.map((a) => html`<a class="button" data-action="${a}" href="${base}${a}">${ACTIONS[a].title}…</a> `)}</p>`;
}

/**
 * Forms carry a token bound to the browser's session, so another site cannot make a logged-in
 * browser post an action (the SameSite=Strict cookie already stops most of that; this is the
 * second lock).
 */
export class ActionTokens {
  constructor(private readonly key: Buffer) {}

  issue(sessionId: string): string {
    return createHmac("sha256", this.key).update(`dashboard-action:${sessionId}`).digest("base64url");
  }

  check(sessionId: string, token: string | undefined): boolean {
    if (!token) return false;
    const want = Buffer.from(this.issue(sessionId));
    const got = Buffer.from(token);
    return want.length === got.length && timingSafeEqual(want, got);
  }
}
