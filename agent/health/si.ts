// The four systeminformation calls health uses, loaded from the library's own modules. Its index loads all twenty
// (docker, wifi, bluetooth, printers, USB…): 4.1 MB of the agent's memory, against 1.7 MB for cpu, memory and
// network (measured, node 20). tests/unit/agent/health-si.test.ts checks these are the index's own functions.
import { createRequire } from 'node:module';
import type * as Si from 'systeminformation';

const load = createRequire(import.meta.url);
const cpu = load('systeminformation/lib/cpu.js') as Pick<typeof Si, 'currentLoad' | 'cpuTemperature'>;
const memory = load('systeminformation/lib/memory.js') as Pick<typeof Si, 'mem'>;
const network = load('systeminformation/lib/network.js') as Pick<typeof Si, 'networkInterfaces'>;

export const si = {
  currentLoad: cpu.currentLoad,
  cpuTemperature: cpu.cpuTemperature,
  mem: memory.mem,
  networkInterfaces: network.networkInterfaces,
};
