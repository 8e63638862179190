import type { RecoveryNetwork } from "../proto/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";

interface Cidr {
  text: string;
  start: bigint;
  end: bigint;
}

/** Parses an IPv4 CIDR block ("10.1.0.0/16") into its address range. */
export function parseCidr(text: string): Cidr {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text.trim());
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const bits = m ? Number(m[5]) : -1;
  if (!m || octets.some((o) => o > 255) || bits > 32) {
    throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `"${text}" is not an IPv4 address space in CIDR form (e.g. 10.1.0.0/16)`);
  }
  const base = octets.reduce((acc, o) => (acc << 8n) | BigInt(o), 0n);
  const size = 1n << BigInt(32 - bits);
  const start = (base / size) * size;
  return { text, start, end: start + size - 1n };
}

export function ipInCidr(ip: string, cidr: string): boolean {
  const range = parseCidr(cidr);
  const addr = parseCidr(`${ip}/32`);
  return addr.start >= range.start && addr.start <= range.end;
}

function overlapping(a: RecoveryNetwork, b: RecoveryNetwork): [string, string] | undefined {
  for (const x of a.addressSpaces.map(parseCidr)) {
    for (const y of b.addressSpaces.map(parseCidr)) if (x.start <= y.end && y.start <= x.end) return [x.text, y.text];
  }
  return undefined;
}

/**
 * Seed 000: two networks with overlapping address spaces cannot be attached to the same circuit.
 * Returns the reason when `network` would break that rule among `all`.
 */
export function circuitConflict(network: RecoveryNetwork, all: RecoveryNetwork[]): string | undefined {
  if (!network.circuit) return undefined;
  for (const other of all) {
    if (other.name === network.name || other.circuit !== network.circuit) continue;
    const clash = overlapping(network, other);
    if (clash) {
      return `network ${network.name} (${clash[0]}) overlaps ${other.name} (${clash[1]}) and both attach to circuit ${network.circuit}: use distinct address spaces or fail over into an isolated network`;
    }
  }
  return undefined;
}

/** Validates a network definition before it is stored. */
export function validateNetwork(network: RecoveryNetwork): void {
  if (!network.name) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "a network needs a name");
  if (network.addressSpaces.length === 0) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `network ${network.name} needs at least one address space`);
  network.addressSpaces.forEach(parseCidr);
  for (const subnet of network.subnets) {
    const s = parseCidr(subnet);
    if (!network.addressSpaces.map(parseCidr).some((a) => s.start >= a.start && s.end <= a.end)) {
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `subnet ${subnet} is outside the address space of network ${network.name}`);
    }
  }
}
