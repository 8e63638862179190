import { randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import {
  type Component,
  ComponentRole,
  Health,
  type HealthIssue,
  SiteLocation,
} from "../../proto/index.js";
import { fromMillis, isEnumValue, parseHealthIssues } from "./row-codec.js";
import { invalid, notFound } from "./store-error.js";

export interface RegisterComponentInput {
  role: ComponentRole;
  name: string;
  address: string;
  location: SiteLocation;
  version: string;
  credentialHash: string;
  /** Host name and /metrics address the component reported (empty when it did not). */
  hostName?: string;
  metricsAddress?: string;
}

interface ComponentRow {
  component_id: string;
  role: number;
  name: string;
  address: string;
  location: number;
  version: string;
  credential_hash: string;
  health: number;
  issues_json: string;
  pending_bytes: number;
  host_name: string;
  metrics_address: string;
  last_heartbeat: number | null;
  registered_at: number;
}

export function componentFromRow(r: ComponentRow): Component {
  return {
    componentId: r.component_id,
    name: r.name,
    role: r.role,
    address: r.address,
    location: r.location,
    health: r.health,
    issues: parseHealthIssues(r.issues_json),
    lastHeartbeat: fromMillis(r.last_heartbeat),
    registeredAt: fromMillis(r.registered_at),
    version: r.version,
    hostName: r.host_name,
    metricsAddress: r.metrics_address,
  };
}

export class ComponentsTable {
  private readonly byId;
  private readonly byName;
  private readonly all;
  private readonly allOfRole;
  private readonly insert;
  private readonly reRegister;
  private readonly heartbeat;

  constructor(db: Database.Database) {
    this.byId = db.prepare<[string], ComponentRow>("SELECT * FROM components WHERE component_id = ?");
    this.byName = db.prepare<[number, string], ComponentRow>(
      "SELECT * FROM components WHERE role = ? AND name = ?",
    );
    this.all = db.prepare<[], ComponentRow>("SELECT * FROM components ORDER BY role, name");
    this.allOfRole = db.prepare<[number], ComponentRow>(
      "SELECT * FROM components WHERE role = ? ORDER BY name",
    );
    this.insert = db.prepare(
      `INSERT INTO components (component_id, role, name, address, location, version,
         credential_hash, health, issues_json, registered_at, host_name, metrics_address)
       VALUES (@id, @role, @name, @address, @location, @version, @credentialHash, @health, '[]', @now, @hostName, @metricsAddress)`,
    );
    // Registration time stays the first one; health resets until the next heartbeat says otherwise.
    this.reRegister = db.prepare(
      `UPDATE components SET address = @address, location = @location, version = @version,
         credential_hash = @credentialHash, host_name = @hostName, metrics_address = @metricsAddress
       WHERE component_id = @id`,
    );
    this.heartbeat = db.prepare(
      `UPDATE components SET health = @health, issues_json = @issues, last_heartbeat = @at,
         pending_bytes = COALESCE(@pendingBytes, pending_bytes)
       WHERE component_id = @id`,
    );
  }

  register(input: RegisterComponentInput): Component {
    if (input.name.trim() === "") throw invalid("component name must not be empty");
    if (!isEnumValue(ComponentRole, input.role) || input.role === ComponentRole.COMPONENT_ROLE_UNSPECIFIED) {
      throw invalid(`component "${input.name}": role ${input.role} is not a known component role`);
    }
    if (!isEnumValue(SiteLocation, input.location)) {
      throw invalid(`component "${input.name}": location ${input.location} is not a known site location`);
    }
    const existing = this.byName.get(input.role, input.name);
    const params = {
      role: input.role,
      name: input.name,
      address: input.address,
      location: input.location,
      version: input.version,
      credentialHash: input.credentialHash,
      hostName: input.hostName ?? "",
      metricsAddress: input.metricsAddress ?? "",
    };
    if (existing) {
      this.reRegister.run({ ...params, id: existing.component_id });
      return this.mustGet(existing.component_id);
    }
    const id = randomUUID();
    this.insert.run({ ...params, id, health: Health.HEALTH_NORMAL, now: Date.now() });
    return this.mustGet(id);
  }

  get(id: string): Component | undefined {
    const row = this.byId.get(id);
    return row ? componentFromRow(row) : undefined;
  }

  mustGet(id: string): Component {
    const c = this.get(id);
    if (!c) throw notFound("component", id);
    return c;
  }

  findByName(role: ComponentRole, name: string): Component | undefined {
    const row = this.byName.get(role, name);
    return row ? componentFromRow(row) : undefined;
  }

  list(role?: ComponentRole): Component[] {
    const rows = role === undefined ? this.all.all() : this.allOfRole.all(role);
    return rows.map(componentFromRow);
  }

  credentialHash(id: string): string | undefined {
    return this.byId.get(id)?.credential_hash;
  }

  recordHeartbeat(
    id: string,
    health: Health,
    issues: HealthIssue[],
    at: Date,
    pendingBytes?: number,
  ): Component {
    const r = this.heartbeat.run({
      id,
      health,
      issues: JSON.stringify(issues),
      at: at.getTime(),
      pendingBytes: pendingBytes ?? null,
    });
    if (r.changes === 0) throw notFound("component", id);
    return this.mustGet(id);
  }
}
