import { ErrorCode, SrlabError } from "../errors/index.js";

/**
 * The readable names of one proto enum, both ways. People and config files speak the names
 * ("azure", "latest-processed"), the wire speaks the enum; each concept declares its table once
 * next to where it lives, and every CLI line, JSON document, SQLite column and flag goes
 * through it. Value 0 (UNSPECIFIED) and values this build does not know have no name: they get
 * one INVALID_ARGUMENT error naming the field and the values it takes.
 */
export class EnumNames<E extends number, N extends string = string> {
  private readonly byValue = new Map<number, N>();
  private readonly byName = new Map<string, E>();

  /** `what` names the field in errors, e.g. "storage kind". */
  constructor(
    readonly what: string,
    table: Readonly<Record<N, E>>,
  ) {
    for (const [name, value] of Object.entries(table) as Array<[N, E]>) {
      if (value === 0) throw new Error(`${what}: value 0 is UNSPECIFIED and has no name`);
      this.byValue.set(value, name);
      this.byName.set(name, value);
    }
  }

  /** Every name, in the table's order. */
  get names(): N[] {
    return [...this.byName.keys()] as N[];
  }

  /** The value of a name; a name outside the table is INVALID_ARGUMENT listing the valid ones. */
  parse(name: string): E {
    const value = this.byName.get(name);
    if (value === undefined) throw this.invalid(`"${name}"`);
    return value;
  }

  /** The name of a value received or stored; UNSPECIFIED or unknown is INVALID_ARGUMENT. */
  name(value: number): N {
    const name = this.byValue.get(value);
    if (name === undefined) throw this.invalid(value === 0 ? "not set" : `${value} (unknown)`);
    return name;
  }

  /** The name of a value, or undefined for UNSPECIFIED and unknown values. */
  nameOf(value: number): N | undefined {
    return this.byValue.get(value);
  }

  /** `value` itself when it has a name: the check for an enum that arrived on the wire. */
  require(value: number): E {
    this.name(value);
    return value as E;
  }

  /** Whether `name` is one of the names. */
  has(name: string): name is N {
    return this.byName.has(name);
  }

  private invalid(got: string): SrlabError {
    return new SrlabError(ErrorCode.INVALID_ARGUMENT, `${this.what} ${got}: must be one of ${this.names.join(", ")}`);
  }
}
