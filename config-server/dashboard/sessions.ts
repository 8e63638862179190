import { createHash, randomBytes } from "node:crypto";

export interface DashboardSessionsOptions {
  /** How long a session lasts after its login link was used. */
  sessionMs: number;
  /** How long an unused login link stays valid. */
  loginLinkMs: number;
  now?: () => number;
  /** Oldest entries are dropped beyond these counts, so a flood of logins cannot grow memory. */
  maxSessions?: number;
  maxLoginTokens?: number;
}

/** Secrets are kept only as hashes: a heap dump or a log of the maps shows no usable value. */
const digest = (secret: string) => createHash("sha256").update(secret).digest("base64url");

/**
 * The dashboard's login tokens and browser sessions, in memory only (a restart logs everyone
 * out, which is what a lab wants). A login token is redeemed once for a session; a session is a
 * random 256-bit id the browser keeps in an HttpOnly cookie.
 */
export class DashboardSessions {
  private readonly tokens = new Map<string, number>();
  private readonly sessions = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly o: DashboardSessionsOptions) {
    this.now = o.now ?? Date.now;
  }

  /** A fresh one-time login token and when it expires. */
  issueLoginToken(): { token: string; expiresAt: Date } {
    this.prune();
    const token = randomBytes(32).toString("base64url");
    const expiresAt = this.now() + this.o.loginLinkMs;
    this.tokens.set(digest(token), expiresAt);
    dropOldest(this.tokens, this.o.maxLoginTokens ?? 100);
    return { token, expiresAt: new Date(expiresAt) };
  }

  /** Spends a login token: a new session when the token is known and unexpired, else undefined. */
  redeem(token: string): { sessionId: string; expiresAt: Date } | undefined {
    if (!token) return undefined;
    const key = digest(token);
    const expiresAt = this.tokens.get(key);
    // Used or not, a presented token is gone: a second use of the same link fails.
    this.tokens.delete(key);
    if (expiresAt === undefined || expiresAt <= this.now()) return undefined;
    this.prune();
    const sessionId = randomBytes(32).toString("base64url");
    const sessionEnds = this.now() + this.o.sessionMs;
    this.sessions.set(digest(sessionId), sessionEnds);
    dropOldest(this.sessions, this.o.maxSessions ?? 1000);
    return { sessionId, expiresAt: new Date(sessionEnds) };
  }

  /** Whether a session id (from the cookie) is a live session. */
  isValid(sessionId: string | undefined): boolean {
    if (!sessionId) return false;
    const key = digest(sessionId);
    const ends = this.sessions.get(key);
    if (ends === undefined) return false;
    if (ends <= this.now()) {
      this.sessions.delete(key);
      return false;
    }
    return true;
  }

  /** Ends a session (logout); unknown ids are ignored. */
  end(sessionId: string | undefined): void {
    if (sessionId) this.sessions.delete(digest(sessionId));
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  private prune(): void {
    const now = this.now();
    for (const [k, t] of this.tokens) if (t <= now) this.tokens.delete(k);
    for (const [k, t] of this.sessions) if (t <= now) this.sessions.delete(k);
  }
}

/** Maps iterate in insertion order, so the first keys are the oldest. */
function dropOldest(map: Map<string, number>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) return;
    map.delete(key);
  }
}
