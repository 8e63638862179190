import type Database from "better-sqlite3";
import { type Component, ComponentRole, Health, SiteLocation } from "../../proto/index.js";
import { wrongState } from "./store-error.js";

interface Candidate {
  component_id: string;
  name: string;
}

/**
 * Picks the least-loaded process server of a site: fewest machines, then lowest pending bytes
 * from its last heartbeat, then name. A Critical PS is only chosen when nothing else is left.
 * The machine being (re)assigned does not count towards its current PS's load.
 */
export class ProcessServerAssignment {
  private readonly pick;
  private readonly assign;

  constructor(
    db: Database.Database,
    private readonly getComponent: (id: string) => Component | undefined,
  ) {
    this.pick = db.prepare<[string, number, number, number], Candidate>(
      `SELECT c.component_id, c.name
       FROM components c
       LEFT JOIN machines m ON m.process_server_id = c.component_id AND m.machine_id <> ?
       WHERE c.role = ? AND c.location = ?
       GROUP BY c.component_id
       ORDER BY (c.health = ?) ASC, COUNT(m.machine_id) ASC, c.pending_bytes ASC, c.name ASC
       LIMIT 1`,
    );
    this.assign = db.prepare<[string, string]>(
      "UPDATE machines SET process_server_id = ? WHERE machine_id = ?",
    );
  }

  assignTo(machineId: string, location: SiteLocation): Component {
    const best = this.pick.get(
      machineId,
      ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
      location,
      Health.HEALTH_CRITICAL,
    );
    if (!best) {
      const where = SiteLocation[location] ?? String(location);
      throw wrongState(`no process server is registered at ${where}; register one (for failback, a process server in Azure) before protecting machine ${machineId}`,
      );
    }
    this.assign.run(best.component_id, machineId);
    return this.getComponent(best.component_id) as Component;
  }
}
