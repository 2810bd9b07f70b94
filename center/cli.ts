// `roadside-agent center …`: run a fleet receiver until Ctrl-C (or --duration-s), showing a live table on a
// terminal or JSON summary lines otherwise, and writing the accepted events to a JSON-lines file, SQLite or
// PostgreSQL (which also keeps health, device state and the seq state gap repair resumes from after a restart).
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { CliIo } from '../core/cli-io.js';
import { EXIT } from '../core/errors.js';
import { createLogger, LOG_LEVELS } from '../core/log.js';
import { PgSink } from './pg/sink.js';
import { FleetReceiver, type FleetReceiverOptions, type GapMode } from './receiver.js';
import { JsonlSink, SqliteSink, type EventSink } from './sinks.js';
import { TrafficCounter } from './traffic.js';
import { renderTable, summaryLine, type ViewExtras } from './view.js';

export const CENTER_USAGE = `usage: roadside-agent center --url URL [options]

Receive a fleet of boxes: availability, health, events; detect and repair seq gaps with the resend command.

  --url URL              broker URL (mqtt://, mqtts://, ws://, wss://)              required
  --protocol 4|5         MQTT version; 4 = 3.1.1 (e.g. the demo's embedded broker)  default 5
  --prefix P             topic prefix of the fleet                                  default roadside
  --share GROUP          split events/health with other receivers ($share/GROUP/…)
  --sites A,B            events/health of these sites only (static sharding; status stays fleet-wide)
  --client-id ID         MQTT client id; a fixed id keeps a persistent session (--session-expiry-s)
  --session-expiry-s S   broker keeps the session (and queues events) S seconds     default 0, 3600 with --client-id
  --username U           user name; the password comes from env ROADSIDE_CENTER_PASSWORD
  --ca FILE              CA bundle (PEM) of the broker certificate
  --cert FILE --key FILE client certificate and key (mutual TLS)
  --out FILE             append accepted events as JSON lines
  --db FILE              store accepted events in SQLite (table events, one row per device and seq)
  --pg URL               store events, violations, flow bins, health and device state in PostgreSQL
                         (postgres://user@host:port/db; password in the URL or env PGPASSWORD); the schema is
                         migrated at start, and gap repair resumes from the saved seq state after a restart
  --gaps MODE            repair | track | off                                       default repair (off with --share)
  --grace-ms MS          age of a seq hole before it counts as a gap                default 3000
  --max-tries N          resend requests per gap before it is reported lost         default 3
  --json                 JSON summary lines even on a terminal
  --interval-s S         seconds between JSON summary lines                         default 10
  --traffic-min M        minutes of traffic (vehicles per line and direction) shown default 5
  --duration-s S         stop after S seconds (default: run until SIGINT/SIGTERM)
  --log-level L          fatal | error | warn | info | debug                        default warn (logs go to stderr)
`;


function positiveNumber(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw Object.assign(new Error(`--${name} must be a non-negative number, got "${v}"`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  return n;
}

export async function centerCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      url: { type: 'string' },
      protocol: { type: 'string' },
      prefix: { type: 'string' },
      share: { type: 'string' },
      sites: { type: 'string' },
      'client-id': { type: 'string' },
      'session-expiry-s': { type: 'string' },
      username: { type: 'string' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      out: { type: 'string' },
      db: { type: 'string' },
      pg: { type: 'string' },
      'traffic-min': { type: 'string' },
      gaps: { type: 'string' },
      'grace-ms': { type: 'string' },
      'max-tries': { type: 'string' },
      json: { type: 'boolean', default: false },
      'interval-s': { type: 'string' },
      'duration-s': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout(CENTER_USAGE);
    return EXIT.OK;
  }
  if (!values.url) {
    io.stderr(`--url is required\n${CENTER_USAGE}`);
    return EXIT.USAGE;
  }
  const protocol = values.protocol === undefined ? 5 : Number(values.protocol);
  if (protocol !== 4 && protocol !== 5) {
    io.stderr(`--protocol must be 4 (MQTT 3.1.1) or 5, got "${values.protocol}"\n`);
    return EXIT.USAGE;
  }
  const gaps = values.gaps as GapMode | undefined;
  if (gaps !== undefined && !['repair', 'track', 'off'].includes(gaps)) {
    io.stderr(`--gaps must be repair, track or off\n`);
    return EXIT.USAGE;
  }
  const level = (values['log-level'] ?? 'warn') as (typeof LOG_LEVELS)[number];
  if (!LOG_LEVELS.includes(level)) {
    io.stderr(`--log-level must be one of ${LOG_LEVELS.join(', ')}\n`);
    return EXIT.USAGE;
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    io.stderr('--cert and --key go together\n');
    return EXIT.USAGE;
  }
  const url = values.url;
  if (/^(mqtt|ws):\/\//.test(url) && !/^\w+:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/.test(url)) {
    io.stderr(`warning: ${url} is not encrypted; use mqtts:// or wss:// beyond this machine\n`);
  }
  const intervalS = positiveNumber('interval-s', values['interval-s']) ?? 10;
  const trafficMin = Math.max(1, Math.round(positiveNumber('traffic-min', values['traffic-min']) ?? 5));
  const durationS = positiveNumber('duration-s', values['duration-s']);

  const log = createLogger({ level, destination: pino.destination({ fd: 2, sync: true }) });
  const opts: FleetReceiverOptions = {
    url,
    protocol,
    prefix: values.prefix,
    share: values.share,
    sites: values.sites
      ?.split(',')
      .map((x) => x.trim())
      .filter(Boolean),
    clientId: values['client-id'],
    session_expiry_s: positiveNumber('session-expiry-s', values['session-expiry-s']),
    username: values.username,
    password: io.env.ROADSIDE_CENTER_PASSWORD,
    ca: values.ca,
    cert: values.cert,
    key: values.key,
    gaps,
    grace_ms: positiveNumber('grace-ms', values['grace-ms']),
    max_tries: positiveNumber('max-tries', values['max-tries']),
  };
  const sinks: EventSink[] = [];
  let receiver: FleetReceiver;
  try {
    if (values.out) sinks.push(new JsonlSink(values.out));
    if (values.db) sinks.push(new SqliteSink(values.db));
    const pg = values.pg ? new PgSink({ url: values.pg }, log) : undefined;
    if (pg) sinks.push(pg);
    receiver = new FleetReceiver({ ...opts, sinks, state: pg }, log);
  } catch (err) {
    for (const s of sinks) await s.close().catch(() => undefined);
    throw err;
  }

  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const table = io.interactive && !values.json;
  let timer: NodeJS.Timeout | undefined;
  let durationTimer: NodeJS.Timeout | undefined;
  const traffic = new TrafficCounter(trafficMin);
  receiver.on('event', (ev, meta) => traffic.add(ev, meta.received_at));
  const extras = (): ViewExtras => ({ sinks: receiver.sinkStats(), traffic: { rows: traffic.rows(Date.now(), trafficMin), window_min: trafficMin } });
  try {
    await receiver.start(stop.signal);
    const draw = (): void => {
      if (table) {
        const rows = Math.max(5, (process.stdout.rows || 40) - 6);
        io.stdout(`\x1b[H\x1b[2J${renderTable(receiver.devices(), receiver.totals(), { maxRows: rows, width: process.stdout.columns || undefined, ...extras() })}`);
      } else io.stdout(summaryLine(receiver.devices(), receiver.totals(), Date.now(), extras()));
    };
    timer = setInterval(draw, table ? 1000 : Math.max(0.2, intervalS) * 1000);
    if (durationS !== undefined) durationTimer = setTimeout(() => stop.abort(), durationS * 1000);
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      else stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } catch (err) {
    if (!stop.signal.aborted) {
      io.stderr(`roadside-agent center: ${err instanceof Error ? err.message : String(err)}\n`);
      await receiver.stop();
      return EXIT.FATAL;
    }
  } finally {
    clearInterval(timer);
    clearTimeout(durationTimer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  await receiver.stop();
  io.stdout(summaryLine(receiver.devices(), receiver.totals(), Date.now(), extras()));
  return EXIT.OK;
}
