/** Sessions whose window is already widened. */
const widenedSessions = new WeakSet<object>();

interface Http2SessionLike {
  setLocalWindowSize?(size: number): void;
  settings?(settings: { initialWindowSize: number }): void;
  destroyed?: boolean;
}

/**
 * Widens the HTTP/2 receive window (connection and new streams) of the session under a grpc-js
 * server call. grpc-js has no server option for it, so this reaches into its call objects; it is
 * best effort: when the shape is not found the default window stays and everything still works.
 */
export function widenReceiveWindow(call: object, bytes: number): void {
  try {
    let c = (call as { call?: unknown }).call as { stream?: { session?: Http2SessionLike }; nextCall?: unknown } | undefined;
    for (let i = 0; i < 8 && c; i++) {
      const session = c.stream?.session;
      if (session && typeof session === "object") {
        if (widenedSessions.has(session) || session.destroyed) return;
        widenedSessions.add(session);
        session.setLocalWindowSize?.(bytes);
        session.settings?.({ initialWindowSize: bytes });
        return;
      }
      c = c.nextCall as typeof c;
    }
  } catch {
    // Only a throughput optimisation.
  }
}
