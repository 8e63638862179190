import type Database from "better-sqlite3";
import { RecoveryNetwork } from "../../proto/index.js";
import { invalid, notFound } from "./store-error.js";

interface NetworkRow {
  name: string;
  network_json: string;
  created_at: number;
}

/** Networks (recovery and on-premises) with their address spaces and circuits. */
export class NetworksTable {
  private readonly select;
  private readonly all;
  private readonly insert;

  constructor(db: Database.Database) {
    this.select = db.prepare<[string], NetworkRow>("SELECT * FROM networks WHERE name = ?");
    this.all = db.prepare<[], NetworkRow>("SELECT * FROM networks ORDER BY name");
    this.insert = db.prepare<[string, string, number]>(
      "INSERT INTO networks (name, network_json, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET network_json = excluded.network_json",
    );
  }

  upsert(network: RecoveryNetwork): RecoveryNetwork {
    if (!network.name.trim()) throw invalid("a network needs a name");
    this.insert.run(network.name, JSON.stringify(RecoveryNetwork.toJSON(network)), Date.now());
    return this.mustGet(network.name);
  }

  get(name: string): RecoveryNetwork | undefined {
    const row = this.select.get(name);
    return row ? RecoveryNetwork.fromJSON(JSON.parse(row.network_json)) : undefined;
  }

  mustGet(name: string): RecoveryNetwork {
    const n = this.get(name);
    if (!n) throw notFound("network", name);
    return n;
  }

  list(): RecoveryNetwork[] {
    return this.all.all().map((r) => RecoveryNetwork.fromJSON(JSON.parse(r.network_json)));
  }
}
