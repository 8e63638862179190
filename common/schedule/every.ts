import cron from "node-cron";

/** A cron expression (seconds field) firing every `seconds`, or undefined when cron cannot say it evenly. */
export function cronExpressionEvery(seconds: number): string | undefined {
  if (!Number.isInteger(seconds) || seconds <= 0) return undefined;
  if (seconds < 60) return `*/${seconds} * * * * *`;
  if (seconds % 60 === 0 && seconds / 60 < 60) return `0 */${seconds / 60} * * * *`;
  if (seconds % 3600 === 0 && seconds / 3600 < 24) return `0 0 */${seconds / 3600} * * *`;
  return undefined;
}

export interface Repeating {
  stop(): void;
}

/**
 * Runs `fn` every `seconds` on the wall-clock grid (node-cron), so points land on predictable
 * times like ASR's; periods cron cannot express evenly (e.g. 90 s, 36 h) fall back to setInterval.
 */
export function every(seconds: number, fn: () => Promise<void>): Repeating {
  const expression = cronExpressionEvery(seconds);
  if (expression && cron.validate(expression)) {
    const task = cron.schedule(expression, fn, { noOverlap: true, unref: true });
    return { stop: () => void task.destroy() };
  }
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    fn().finally(() => {
      busy = false;
    });
  }, seconds * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
