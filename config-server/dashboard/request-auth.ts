import type { IncomingHttpHeaders } from "node:http";
import type { DashboardSessions } from "./sessions.js";

export const SESSION_COOKIE = "srlab_session";

/** Cookies of a request (`a=1; b=2`); a malformed pair is skipped, never fatal. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name && !out.has(name)) out.set(name, value);
  }
  return out;
}

/**
 * The session cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's page can
 * make the browser send it), for the whole dashboard. Not `Secure`: the dashboard speaks plain
 * HTTP on loopback by default, and a Secure cookie would never be sent back.
 */
export function sessionCookie(sessionId: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${sessionId}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
}

/** A cookie that makes the browser forget the session. */
export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
}

/** The token of `Authorization: Bearer <token>`, if that is what the header holds. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m?.[1];
}

export type DashboardAccess = { kind: "admin" } | { kind: "session"; sessionId: string };

/**
 * Who a request is: the admin (scripts, curl: `Authorization: Bearer <admin credential>`), a
 * browser with a live session cookie, or nobody (undefined: the request gets 401 and no data).
 * A bearer header that is present but wrong is nobody, even when a good cookie comes along.
 */
export function authenticateRequest(
  headers: IncomingHttpHeaders,
  sessions: DashboardSessions,
  isAdminCredential: (credential: string) => boolean,
): DashboardAccess | undefined {
  if (headers.authorization !== undefined) {
    const token = bearerToken(headers.authorization);
    return token && isAdminCredential(token) ? { kind: "admin" } : undefined;
  }
  const sessionId = parseCookies(headers.cookie).get(SESSION_COOKIE);
  return sessionId && sessions.isValid(sessionId) ? { kind: "session", sessionId } : undefined;
}
