import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * A registry for one daemon: process and Node runtime metrics plus a `component` label on every
 * series. Separate registries keep daemons embedded in one process (tests) from colliding.
 */
export function createRegistry(component: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry });
  return registry;
}
