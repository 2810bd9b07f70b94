// Health loads systeminformation's cpu, memory and network modules on their own (agent/health/si.ts): they must
// be the very functions the library's index exports, or an upgrade that moved them would go unnoticed.
import full from 'systeminformation';
import { describe, expect, it } from 'vitest';
import { si } from '../../../agent/health/si.js';

describe('systeminformation, loaded by module', () => {
  it('gives the index’s own functions', () => {
    for (const name of Object.keys(si) as Array<keyof typeof si>) expect(si[name], name).toBe(full[name]);
  });

  it('reads this machine', async () => {
    const m = await si.mem();
    expect(m.total).toBeGreaterThan(0);
    const l = await si.currentLoad();
    expect(l.cpus.length).toBeGreaterThan(0);
  });
});
