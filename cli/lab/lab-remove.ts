import { LabLayout } from "./lab-layout.js";
import { clearReady, stopProcess } from "./processes.js";

/**
 * After `srlab remove`: stops the lab's daemons of the removed components and drops them from
 * lab.json, so `srlab up` neither restarts them nor starts them again. Their data directories
 * stay (a machine's disk images are the user's). Returns the names it stopped.
 */
export async function forgetLabComponents(dir: string, names: string[]): Promise<string[]> {
  const layout = new LabLayout(dir);
  if (!layout.exists()) return [];
  const manifest = layout.read();
  const gone = manifest.components.filter((c) => names.includes(c.name));
  for (const c of gone) {
    await stopProcess(c.pid);
    clearReady(c.readyFile);
  }
  manifest.components = manifest.components.filter((c) => !gone.includes(c));
  layout.write(manifest);
  return gone.map((c) => c.name);
}
