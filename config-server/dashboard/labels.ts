import { badge, html, type SafeHtml } from "../../common/html/index.js";
import { healthIssueCodeName } from "../../common/enum-names/index.js";
import { Health, type HealthIssue } from "../../proto/index.js";

/** `REPLICATION_STATE_INITIAL_REPLICATION` → `initial-replication`, as `srlab status` writes it. */
export function enumLabel(names: Record<number, string>, value: number, prefix: string): string {
  return (names[value] ?? "unknown").replace(prefix, "").toLowerCase().replace(/_/g, "-");
}

export function healthLabel(h: Health): string {
  return enumLabel(Health, h, "HEALTH_");
}

/** Health as a coloured badge with `data-health` for tests. */
export function healthBadge(h: Health): SafeHtml {
  const label = healthLabel(h);
  const kind = h === Health.HEALTH_NORMAL ? "pass" : h === Health.HEALTH_WARNING ? "warn" : h === Health.HEALTH_CRITICAL ? "fail" : "info";
  return html`<span data-health="${label}">${badge(label, kind)}</span>`;
}

/** Health with its reasons underneath. */
export function healthWithReasons(h: Health, issues: readonly HealthIssue[]): SafeHtml {
  return html`${healthBadge(h)}${issues.map((i) => html`<div class="reason">${healthLabel(i.health)}: ${i.message}${i.code ? html` <span class="code">(${healthIssueCodeName(i.code)})</span>` : ""}</div>`)}`;
}

/** "4 s ago", "3 min ago", "2.1 h ago"; "never" without a time. */
export function ago(time: Date | undefined, nowMs: number): string {
  if (!time) return "never";
  const s = Math.max(0, (nowMs - time.getTime()) / 1000);
  if (s < 120) return `${s.toFixed(0)} s ago`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

/** A clock time in UTC with the date when it is not today. */
export function clock(time: Date | undefined, nowMs: number): string {
  if (!time) return "–";
  const iso = time.toISOString();
  const sameDay = iso.slice(0, 10) === new Date(nowMs).toISOString().slice(0, 10);
  return `${sameDay ? "" : `${iso.slice(0, 10)} `}${iso.slice(11, 19)}`;
}

/** RPO in seconds as status shows it. */
export function rpoText(seconds: number): string {
  return seconds >= 120 ? `${(seconds / 60).toFixed(1)} min` : `${seconds.toFixed(1)} s`;
}

/** The host part of `host:port` or of a URL (IPv6 in brackets kept whole). */
export function hostOf(address: string): string {
  if (!address) return "–";
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address)) {
    try {
      return new URL(address).hostname || "this machine";
    } catch {
      return address;
    }
  }
  const m = /^\[([^\]]+)\]:\d+$/.exec(address) ?? /^([^:]+):\d+$/.exec(address);
  return m?.[1] ?? address;
}
