/** Machine ids become directory names: keep [A-Za-z0-9_-], percent-encode the rest (so no "..", "/"). */
export function encodeMachineDir(machineId: string): string {
  let out = "";
  for (const byte of Buffer.from(machineId, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export function decodeMachineDir(name: string): string | undefined {
  try {
    return decodeURIComponent(name);
  } catch {
    return undefined;
  }
}
