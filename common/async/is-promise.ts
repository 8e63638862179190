/** True for promises (anything with a `then`), so sync-or-async results skip an `await` when sync. */
export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === "function";
}
