// `roadside-agent center …`: run a fleet receiver until Ctrl-C (or --duration-s), showing a live table on a
// terminal or JSON summary lines otherwise, and writing the accepted events to a JSON-lines file, SQLite or
// PostgreSQL (which also keeps health, device state and the seq state gap repair resumes from after a restart).
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { pino } from 'pino';
import type { CliIo } from '../core/cli-io.js';
import { EXIT } from '../core/errors.js';
import { createLogger, LOG_LEVELS } from '../core/log.js';
import { addDeviceCommands } from './device-cli.js';
import type { FleetReceiver, FleetReceiverOptions, GapMode } from './receiver.js';
import type { EventSink } from './sinks.js';
import type { ViewExtras } from './view.js';
import { collectUrls, plaintextRemote, URL_HELP } from './broker-urls.js';

interface CenterFlags {
  url?: string[];
  protocol?: string;
  prefix?: string;
  share?: string;
  sites?: string;
  clientId?: string;
  sessionExpiryS?: number;
  username?: string;
  ca?: string;
  cert?: string;
  key?: string;
  out?: string;
  db?: string;
  pg?: string;
  trafficMin?: number;
  gaps?: GapMode;
  graceMs?: number;
  maxTries?: number;
  json?: boolean;
  intervalS?: number;
  durationS?: number;
  logLevel: (typeof LOG_LEVELS)[number];
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a non-negative number');
  return n;
}

/**
 * `center`: the command and its flags (the roadside-agent command tree adds it; cli/framework.ts gives it
 * the shared error style and exit codes). `done` receives the exit code. The receiver, the sinks and PostgreSQL
 * load only when the command runs, not on every start of the agent's CLI.
 */
export function centerCli(io: CliIo, done: (code: number) => void): Command {
  const center = new Command('center')
    .summary('fleet receiver: live table, gap repair, events to JSON lines, SQLite or PostgreSQL')
    .description(
      'Receive a fleet of boxes: availability, health, events; detect and repair seq gaps with the resend command. ' +
        'Runs until Ctrl-C (or --duration-s): a live table on a terminal, JSON summary lines otherwise. Logs go to stderr.',
    )
    .option('--url <URL>', URL_HELP, collectUrls)
    .option('--protocol <4|5>', "MQTT version; 4 = 3.1.1 (e.g. the demo's embedded broker) (default: 5)")
    .option('--prefix <P>', 'topic prefix of the fleet (default: roadside)')
    .option('--share <GROUP>', 'split events/health with other receivers ($share/GROUP/…)')
    .option('--sites <A,B>', 'events/health of these sites only (static sharding; status stays fleet-wide)')
    .option('--client-id <ID>', 'MQTT client id; a fixed id keeps a persistent session (--session-expiry-s)')
    .option('--session-expiry-s <S>', 'broker keeps the session (and queues events) S seconds (default: 0, 3600 with --client-id)', nonNegative)
    .option('--username <U>', 'user name; the password comes from env ROADSIDE_CENTER_PASSWORD')
    .option('--ca <FILE>', 'CA bundle (PEM) of the broker certificate')
    .option('--cert <FILE>', 'client certificate (mutual TLS; with --key)')
    .option('--key <FILE>', 'client key (mutual TLS; with --cert)')
    .option('--out <FILE>', 'append accepted events as JSON lines')
    .option('--db <FILE>', 'store accepted events in SQLite (table events, one row per device and seq)')
    .option(
      '--pg <URL>',
      'store events, violations, flow bins, health and device state in PostgreSQL (postgres://host:port/db, user and ' +
        'password in the URL or env PGUSER / PGPASSWORD); the schema is migrated at start, and gap repair resumes ' +
        'from the saved seq state after a restart',
    )
    .addOption(new Option('--gaps <MODE>', 'gap handling (default: repair, off with --share)').choices(['repair', 'track', 'off']))
    .option('--grace-ms <MS>', 'age of a seq hole before it counts as a gap (default: 3000)', nonNegative)
    .option('--max-tries <N>', 'resend requests per gap before it is reported lost (default: 3)', nonNegative)
    .option('--json', 'JSON summary lines even on a terminal')
    .option('--interval-s <S>', 'seconds between JSON summary lines', nonNegative, 10)
    .option('--traffic-min <M>', 'minutes of traffic (vehicles per line and direction) shown', nonNegative, 5)
    .option('--duration-s <S>', 'stop after S seconds (default: run until SIGINT/SIGTERM)', nonNegative)
    .addOption(new Option('--log-level <L>', 'log level (logs go to stderr)').choices(LOG_LEVELS).default('warn'))
    .addHelpText('after', '\nExit codes: 0 stopped (Ctrl-C or --duration-s), 1 failure (broker, database), 64 usage.')
    .action(async (_opts: unknown, cmd: Command) => {
      done(await runCenter(cmd, io));
    });
  return addDeviceCommands(center, io, done);
}

/** `center ARGS` on its own, outside the roadside-agent command tree (tests): the exit code; a failure throws. */
export async function centerCommand(args: string[], io: CliIo): Promise<number> {
  let code: number = EXIT.OK;
  const cmd = centerCli(io, (c) => (code = c))
    .exitOverride()
    .configureOutput({ writeOut: (t) => io.stdout(t), writeErr: (t) => io.stderr(t) })
    .configureHelp({ optionTerm: (o) => o.flags.replace(/<([^>]+)>/g, '$1') });
  try {
    await cmd.parseAsync(args, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    throw err;
  }
}

async function runCenter(cmd: Command, io: CliIo): Promise<number> {
  const values = cmd.opts<CenterFlags>();
  const usage: (message: string) => never = (message) => cmd.error(message, { exitCode: EXIT.USAGE });
  if (!values.url) usage('--url is required');
  const protocol = values.protocol === undefined ? 5 : Number(values.protocol);
  if (protocol !== 4 && protocol !== 5) usage(`--protocol must be 4 (MQTT 3.1.1) or 5, got "${values.protocol}"`);
  if ((values.cert === undefined) !== (values.key === undefined)) usage('--cert and --key go together');
  const url = values.url;
  for (const u of plaintextRemote(url)) io.stderr(`warning: ${u} is not encrypted; use mqtts:// or wss:// beyond this machine\n`);
  const level = values.logLevel;
  const intervalS = values.intervalS ?? 10;
  const trafficMin = Math.max(1, Math.round(values.trafficMin ?? 5));
  const durationS = values.durationS;
  const [{ PgSink }, { FleetReceiver: Receiver }, { JsonlSink, SqliteSink }, { TrafficCounter }, { renderTable, summaryLine }] = await Promise.all([
    import('./pg/sink.js'),
    import('./receiver.js'),
    import('./sinks.js'),
    import('./traffic.js'),
    import('./view.js'),
  ]);

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
    clientId: values.clientId,
    session_expiry_s: values.sessionExpiryS,
    username: values.username,
    password: io.env.ROADSIDE_CENTER_PASSWORD,
    ca: values.ca,
    cert: values.cert,
    key: values.key,
    gaps: values.gaps,
    grace_ms: values.graceMs,
    max_tries: values.maxTries,
  };
  const sinks: EventSink[] = [];
  let receiver: FleetReceiver;
  try {
    if (values.out) sinks.push(new JsonlSink(values.out));
    if (values.db) sinks.push(new SqliteSink(values.db));
    const pg = values.pg ? new PgSink({ url: values.pg }, log) : undefined;
    if (pg) sinks.push(pg);
    receiver = new Receiver({ ...opts, sinks, state: pg }, log);
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
