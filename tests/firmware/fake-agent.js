// Stand-in for the agent in the firmware-scripts tests: serves GET /healthz on 127.0.0.1:$AGENT_PORT.
// In a fake release (tests/firmware/helpers.bash make_release) it is dist/cli/main.js and reads its
// behaviour from <release>/fake.json: {"version": "0.2.0", "mode": "healthy" | "unhealthy" | "crash"}.
// FAKE_MODE overrides the mode. /sick always answers 503.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

let cfg = { mode: 'healthy', version: '0.0.0' };
try {
  cfg = { ...cfg, ...JSON.parse(readFileSync(new URL('../../fake.json', import.meta.url), 'utf8')) };
} catch {
  // not inside a fake release: defaults
}
if (process.env.FAKE_MODE) cfg.mode = process.env.FAKE_MODE;
if (cfg.mode === 'crash') {
  console.error(`fake agent ${cfg.version}: crashing on start`);
  process.exit(1);
}
const server = createServer((req, res) => {
  const status = req.url === '/healthz' ? (cfg.mode === 'healthy' ? 200 : 503) : req.url === '/sick' ? 503 : 404;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ status: status === 200 ? 'ok' : 'error', version: cfg.version }));
});
server.listen(Number(process.env.AGENT_PORT), '127.0.0.1', () => console.error(`fake agent ${cfg.version} (${cfg.mode}) on ${process.env.AGENT_PORT}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
