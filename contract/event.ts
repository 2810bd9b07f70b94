/**
 * The traffic event contract (`{base}/events/{camera}`): one versioned envelope, discriminated on `type`, each
 * type with its own `attributes`. TypeScript types and the JSON Schema for the center are derived from these
 * zod schemas, so code and documentation cannot drift. Keys are snake_case with units in their names.
 *
 * Three stages of one event:
 * - draft (`EventDraft`): made by analytics with `makeEvent`; no `seq` yet;
 * - stored (`StoredEvent`): the outbox assigned the per-device `seq`;
 * - wire (`WireEvent`, `WireEventSchema`): the uplink added `sent_at` and `replayed`.
 *
 * Longer than 450 lines because every event type's attributes belong to the one discriminated union the JSON
 * Schema and the docs are generated from; split, the shapes would be read in several places.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { z } from 'zod';

export const EVENT_SCHEMA = 'roadside.event/1';

export const EVENT_TYPES = [
  'object_new',
  'object_update',
  'object_end',
  'line_crossing',
  'zone_enter',
  'zone_exit',
  'stopped_vehicle',
  'wrong_way',
  'speed',
  'red_light',
  'speeding',
  'flow',
  'camera_tamper',
] as const;
export const EventTypeSchema = z.enum(EVENT_TYPES).describe('Event type; selects the shape of `object`, `rule` and `attributes`');
export type EventType = z.infer<typeof EventTypeSchema>;

export const PrioritySchema = z
  .enum(['violation', 'event', 'statistics'])
  .describe('Delivery priority: violations first, then events, then statistics (the outbox sends and keeps them in this order)');
export type Priority = z.infer<typeof PrioritySchema>;

/** Priority of each type; the same mapping is fixed per type in the schema. */
export const PRIORITY = {
  object_new: 'event',
  object_update: 'event',
  object_end: 'event',
  line_crossing: 'event',
  zone_enter: 'event',
  zone_exit: 'event',
  stopped_vehicle: 'violation',
  wrong_way: 'violation',
  speed: 'event',
  red_light: 'violation',
  speeding: 'violation',
  flow: 'statistics',
  camera_tamper: 'event',
} as const satisfies Record<EventType, Priority>;

// ---------------------------------------------------------------------------------------------------------
// Building blocks

const IsoTime = z.iso.datetime({ offset: true });
const Slug = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/);
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const Direction = z.enum(['in', 'out']).describe('Crossing direction: "in" from the left of the line a→b to its right (as seen in the image), "out" the reverse');
const PointPx = z.tuple([z.number(), z.number()]);
const count = () => z.int().min(0);

export const BoxSchema = z.tuple([z.number(), z.number(), z.number(), z.number()]).describe('Box [x1, y1, x2, y2], camera pixels');

export const ObjectSchema = z
  .strictObject({
    track_id: z.int().min(1).describe('Tracker id, unique per camera within one agent run, increasing'),
    class: z.string().min(1).describe('Object class, voted over the track weighted by detection score'),
    score: z.number().min(0).max(1).describe('Score of the latest matched detection, 0-1'),
    box: BoxSchema,
    speed_kmh: z.number().min(0).optional().describe('Ground speed, km/h; only with a camera calibration'),
    speed_uncertainty_kmh: z.number().min(0).optional().describe('One standard deviation of speed_kmh, km/h'),
  })
  .describe('The tracked object');
export type EventObject = z.infer<typeof ObjectSchema>;

const ObjectWithSpeed = ObjectSchema.extend({
  speed_kmh: z.number().min(0).describe('Ground speed measured around the line, km/h'),
  speed_uncertainty_kmh: z.number().min(0).describe('One standard deviation of speed_kmh, km/h'),
});

const rule = <K extends 'line' | 'zone' | 'signal'>(kind: K) =>
  z.strictObject({ kind: z.literal(kind), id: Slug.describe(`${kind} id from the configuration`) }).describe(`The ${kind} that produced the event`);
const LineRule = rule('line');
const ZoneRule = rule('zone');
const SignalRule = rule('signal');
export const RuleSchema = z.discriminatedUnion('kind', [LineRule, ZoneRule, SignalRule]);
export type EventRule = z.infer<typeof RuleSchema>;

export const EvidenceImagesSchema = z
  .strictObject({
    frame_sha256: Sha256.describe('SHA-256 (hex) of the full-frame JPEG'),
    crop_sha256: Sha256.describe('SHA-256 (hex) of the object-crop JPEG'),
    frame_file: z.string().min(1).describe('Full-frame JPEG file name in the evidence directory'),
    crop_file: z.string().min(1).describe('Object-crop JPEG file name in the evidence directory'),
  })
  .describe('Evidence images (a box without evidence packages: the analysed frame and the object crop), written before the event');
export type EvidenceImages = z.infer<typeof EvidenceImagesSchema>;

export const PlateSummarySchema = z
  .strictObject({
    text: z.string().min(1).describe('The plate, canonical (`51F-123.45`) when valid_format, else the cleaned OCR text'),
    confidence: z.number().min(0).max(1).describe('Confidence of the vote over the reads, 0-1'),
    valid_format: z.boolean().describe('Whether the text fits a national plate format'),
  })
  .describe('The number plate read on the full-resolution vehicle crops of the package');
export type PlateSummary = z.infer<typeof PlateSummarySchema>;

export const EvidencePackageSchema = z
  .strictObject({
    package_id: z.uuid().describe('Id of the evidence package (the event id): folder <evidence dir>/<package_id>/ on the box'),
    manifest_sha256: Sha256.describe('SHA-256 (hex) of the exact bytes of the package manifest.json (signed in manifest.sig)'),
    files: z.int().min(1).describe('Files listed in the package manifest (clip, stills, crops)'),
    plate: PlateSummarySchema.optional(),
  })
  .describe(
    "The violation's evidence package, complete on the box before the event was sent: clip, full-resolution stills, vehicle and plate crops, manifest signed with the box key",
  );
export type EvidencePackageRef = z.infer<typeof EvidencePackageSchema>;

export const EvidenceSchema = z
  .union([EvidencePackageSchema, EvidenceImagesSchema])
  .describe('Evidence of a violation: an evidence package (current boxes), or two images (boxes without packages)');
export type Evidence = z.infer<typeof EvidenceSchema>;

const Zones = z.array(Slug).describe('Zones the object is in');

// ---------------------------------------------------------------------------------------------------------
// Attributes per type

export const ObjectNewAttributes = z.strictObject({
  first_seen_at: IsoTime.describe('Capture time of the first detection of the track'),
  zones: Zones,
});

export const ObjectUpdateAttributes = z.strictObject({
  changed: z
    .array(z.enum(['class', 'moved', 'zones', 'speed']))
    .min(1)
    .describe('What changed since the previous new/update event of this track'),
  zones: Zones,
  age_s: z.number().min(0).describe('Time since the first detection, seconds'),
});

export const ObjectEndAttributes = z.strictObject({
  reason: z.enum(['lost', 'left_frame', 'shutdown']).describe('lost: unseen for max_age_s; left_frame: predicted out of the frame; shutdown: analytics stopped'),
  first_seen_at: IsoTime.describe('Capture time of the first detection'),
  last_seen_at: IsoTime.describe('Capture time of the last detection'),
  duration_s: z.number().min(0).describe('From first to last detection, seconds'),
  distance_px: z.number().min(0).describe('Path length of the box anchor (bottom centre), camera pixels'),
  zones_visited: z.array(Slug).describe('Zones the object entered, in order, without repeats'),
  lines_crossed: z
    .array(
      z.strictObject({
        line_id: Slug,
        direction: Direction,
        lane: Slug.optional().describe('Lane of the line the crossing was counted in, if the line has lanes and the crossing was in one'),
        class: z.string().min(1).optional().describe('Class the line_crossing event reported (the vote at the crossing)'),
        flow_corrected: z
          .boolean()
          .optional()
          .describe('Present when `class` differs from object.class: true when the crossing was moved to object.class in its flow bin before the bin was sent, false when the bin had been sent already'),
      }),
    )
    .describe('Counted line crossings, in order'),
  max_speed_kmh: z.number().min(0).optional().describe('Highest speed measured on the track, km/h; only with a calibration'),
  class_corrected_from: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Present when a line_crossing event of this track reported another class than object.class (the vote over the whole track, final): the class it reported. Count those crossings (lines_crossed[].class differs) as object.class; flow bins still open were corrected already (lines_crossed[].flow_corrected)",
    ),
});

export const LineCrossingAttributes = z.strictObject({
  direction: Direction,
  point_px: PointPx.describe('Where the anchor path crossed the line, [x, y] camera pixels'),
  crossed_at: IsoTime.describe('Crossing time, interpolated between the frames either side of the line'),
  lane: Slug.optional().describe('Lane (lines[].lanes) the crossing point lies in; absent when the line has no lanes or the point is in none'),
});

export const ZoneEnterAttributes = z.strictObject({
  occupancy: count().describe('Objects in the zone after this one entered'),
});

export const ZoneExitAttributes = z.strictObject({
  reason: z.enum(['left', 'track_ended']).describe('left: the anchor left the polygon; track_ended: the track ended inside'),
  dwell_s: z.number().min(0).describe('Time in the zone, seconds'),
  occupancy: count().describe('Objects in the zone after this one left'),
});

export const StoppedVehicleAttributes = z.strictObject({
  dwell_s: z.number().min(0).describe('Time in the zone so far, seconds'),
  dwell_threshold_s: z.number().positive().describe('The zone threshold that was exceeded, seconds'),
  entered_at: IsoTime.describe('When the object entered the zone'),
});

export const WrongWayAttributes = z.strictObject({
  distance_px: z.number().min(0).describe('Travel against the allowed direction, camera pixels'),
  allowed_direction: PointPx.describe('Allowed direction of travel [dx, dy] from the zone configuration'),
  heading: PointPx.describe('Observed direction of travel, unit vector [dx, dy] in the image'),
});

export const SpeedAttributes = z.strictObject({
  direction: Direction,
  window_s: z.number().positive().describe('Time span of the positions fitted, seconds'),
  samples: z.int().min(2).describe('Positions fitted'),
  distance_m: z.number().min(0).describe('Ground distance covered over the window, metres'),
  lane: Slug.optional().describe('Lane of the line crossing, as in its line_crossing event'),
  reference: z
    .enum(['bottom_centre', 'bottom_left', 'bottom_right'])
    .optional()
    .describe('Point of the box whose ground positions were fitted: the bottom centre, or the bottom corner on the side that stayed whole while the other touched the frame edge'),
  samples_cut_off: count()
    .optional()
    .describe('Positions in the window left out because the box touched the frame edge (a cut-off box moves slower than the vehicle)'),
});

export const SpeedingAttributes = z.strictObject({
  limit_kmh: z.number().positive().describe('The speed limit of the line or zone, km/h'),
  speed_kmh: z.number().min(0).describe('Measured speed, km/h (as object.speed_kmh)'),
  uncertainty_kmh: z.number().min(0).describe('One standard deviation of speed_kmh, km/h'),
  excess_kmh: z
    .number()
    .positive()
    .describe('speed_kmh - uncertainty_kmh - limit_kmh: by how much even the low end of the measurement exceeds the limit, km/h'),
  measured: z.enum(['line', 'zone']).describe('line: the speed fitted around the line crossing (as in its speed event); zone: the running speed inside the zone'),
  direction: Direction.optional().describe('Crossing direction (line rules)'),
  lane: Slug.optional().describe('Lane of the line crossing, if any'),
  window_s: z.number().positive().optional().describe('Time span of the positions fitted, seconds'),
});

export const RedLightAttributes = z.strictObject({
  line_id: Slug.describe('The stop line crossed'),
  direction: Direction,
  point_px: PointPx.describe('Where the anchor path crossed the stop line, [x, y] camera pixels'),
  crossed_at: IsoTime.describe('Crossing time, interpolated between the frames either side of the line'),
  signal_state: z.literal('red'),
  red_elapsed_s: z.number().min(0).describe('Time since the signal turned red, at the crossing, seconds'),
});

const DirectionStats = z.strictObject({
  volume: count().describe('Objects counted in this direction'),
  volume_by_class: z.record(z.string(), count()).describe('Objects counted per class'),
  speed_samples: count().describe('Speed measurements in the bin'),
  speed_mean_kmh: z.number().min(0).optional().describe('Mean speed, km/h; only with a calibration and at least one measurement'),
  speed_p85_kmh: z.number().min(0).optional().describe('85th-percentile speed (linear interpolation between ranks), km/h'),
});

export const FlowAttributes = z.strictObject({
  bin_start: IsoTime.describe('Start of the bin (aligned to multiples of flow_bin_s on the wall clock)'),
  bin_end: IsoTime.describe('End of the bin'),
  observed_s: z.number().min(0).describe('Time the camera was actually analysed within the bin, seconds; below bin length after a start or an outage'),
  occupancy: z
    .number()
    .min(0)
    .max(1)
    .describe('Fraction of observed_s during which at least one counted object box lay across the line (a virtual loop detector), 0-1'),
  in: DirectionStats.describe('Objects crossing "in"'),
  out: DirectionStats.describe('Objects crossing "out"'),
  lanes: z
    .array(
      z.strictObject({
        lane: Slug.describe('Lane id (lines[].lanes)'),
        occupancy: z.number().min(0).max(1).describe('Fraction of observed_s during which a counted object box lay across the lane, 0-1'),
        in: DirectionStats.describe('Objects crossing "in" within the lane'),
        out: DirectionStats.describe('Objects crossing "out" within the lane'),
      }),
    )
    .optional()
    .describe('Per lane, in configuration order; only for a line with lanes. Crossings outside every lane count in the line totals only'),
});

/** What a camera_tamper event is about; config `cameras[].tamper.kinds` selects the ones watched. */
export const TAMPER_KINDS = ['covered', 'blurred', 'shifted', 'too_dark', 'overexposed', 'frozen'] as const;
export const TamperKindSchema = z
  .enum(TAMPER_KINDS)
  .describe(
    'covered: the picture lost its detail (lens covered or sprayed); blurred: out of focus (fine detail lost against the reference); shifted: the view moved against the reference (camera turned or pushed: lines and zones are off), or no longer matches it at all; too_dark / overexposed: the picture is (nearly) black / washed out; frozen: the frames keep coming but the picture does not change at all',
  );
export type TamperKind = z.infer<typeof TamperKindSchema>;

const luma = () => z.number().min(0).max(255);
export const TamperMeasuresSchema = z
  .strictObject({
    luma_mean: luma().describe('Mean luminance (BT.601 luma, 0-255) of the picture'),
    luma_p5: luma().describe('5th percentile of the luminance, 0-255'),
    luma_p95: luma().describe('95th percentile of the luminance, 0-255'),
    detail: z.number().min(0).describe('Mean absolute gradient of a 64x48 thumbnail of the picture, grey levels per thumbnail pixel'),
    detail_ratio: z.number().min(0).nullable().describe('detail relative to the reference; null without a reference'),
    sharpness_ratio: z.number().min(0).nullable().describe('Fine over coarse detail (independent of brightness and contrast) relative to the reference; null without a reference'),
    shift_dx_px: z.number().nullable().describe('How far the view moved right against the reference, camera pixels (median of the latest checks); null without a reference or when the view does not match it'),
    shift_dy_px: z.number().nullable().describe('How far the view moved down against the reference, camera pixels; null as shift_dx_px'),
    match: z.number().min(-1).max(1).nullable().describe('Similarity of the edges with the reference at the measured offset (normalised correlation, about 0.5-0.9 for the same view, below 0.2 for another); null without a reference'),
    frame_diff: z.number().min(0).nullable().describe('Mean absolute difference of raw pixel samples to the previous check, grey levels (live sensors show at least their noise); null on the first check'),
    unchanged_s: z.number().min(0).describe('Seconds the picture has stayed unchanged (frame_diff at most cameras[].tamper.frozen_diff)'),
  })
  .describe('What the check measured; thresholds are in cameras[].tamper');
export type TamperMeasures = z.infer<typeof TamperMeasuresSchema>;

export const CameraTamperAttributes = z.strictObject({
  kind: TamperKindSchema,
  cleared: z.boolean().describe('false: the condition held for tamper.raise_s (alarm); true: it has been absent for tamper.clear_s (all clear)'),
  since: IsoTime.describe('When the condition was first seen (the alarm went out raise_s later)'),
  duration_s: z.number().min(0).optional().describe('cleared only: from `since` to the last check that saw the condition, seconds'),
  reference_at: IsoTime.nullable().describe('When the reference view was taken (automatically after stable picture, or by rebase-reference); null: none yet'),
  measures: TamperMeasuresSchema,
});

// ---------------------------------------------------------------------------------------------------------
// The envelope

const common = {
  schema: z.literal(EVENT_SCHEMA).describe('Envelope version'),
  id: z.uuid({ version: 'v7' }).describe('Unique event id, UUIDv7 (time-ordered); the center drops duplicates on it'),
  device: Slug.describe('Device id'),
  site: Slug.describe('Site id'),
  camera: Slug.describe('Camera id'),
  captured_at: IsoTime.describe('Wall-clock capture time of the frame the event comes from (flow: end of the bin), ISO 8601 with offset'),
  mono_ms: z.number().min(0).describe('Monotonic capture time on the device, ms; orders events across clock jumps, not comparable across reboots'),
  clock_synced: z.boolean().describe('Whether the device clock was NTP-synchronised at capture; if false captured_at may be off'),
};

const seqField = z.int().min(1).describe('Per-device sequence number assigned by the outbox; gaps reveal lost events');
const draftBase = { ...common, seq: seqField.optional() };
const wireBase = {
  ...common,
  seq: seqField,
  sent_at: IsoTime.describe('Wall-clock time of (this) sending'),
  replayed: z.boolean().describe('True when sent from the backlog after a disconnection or on a resend command'),
};

const priority = <P extends Priority>(p: P) => z.literal(p).describe('Delivery priority (fixed per type)');

function envelope<B extends z.ZodRawShape>(base: B) {
  const ev = <T extends EventType, S extends z.ZodRawShape>(type: T, shape: S) =>
    z.strictObject({ ...base, type: z.literal(type), priority: priority(PRIORITY[type]), ...shape });
  const evidence = EvidenceSchema.optional();
  return z.discriminatedUnion('type', [
    ev('object_new', { object: ObjectSchema, attributes: ObjectNewAttributes }).describe('A track was confirmed'),
    ev('object_update', { object: ObjectSchema, attributes: ObjectUpdateAttributes }).describe(
      'A tracked object changed (class, position, zones or speed); at most once per update_interval_s per track',
    ),
    ev('object_end', { object: ObjectSchema, attributes: ObjectEndAttributes }).describe('A track ended'),
    ev('line_crossing', { object: ObjectSchema, rule: LineRule, attributes: LineCrossingAttributes }).describe(
      'An object crossed a counting line (once per track, line and direction)',
    ),
    ev('zone_enter', { object: ObjectSchema, rule: ZoneRule, attributes: ZoneEnterAttributes }).describe('An object entered a zone'),
    ev('zone_exit', { object: ObjectSchema, rule: ZoneRule, attributes: ZoneExitAttributes }).describe('An object left a zone'),
    ev('stopped_vehicle', { object: ObjectSchema, rule: ZoneRule, attributes: StoppedVehicleAttributes, evidence }).describe(
      'An object stayed in a zone longer than its dwell_threshold_s (once per stay)',
    ),
    ev('wrong_way', { object: ObjectSchema, rule: ZoneRule, attributes: WrongWayAttributes, evidence }).describe(
      "An object travelled against the zone's allowed_direction (once per track and zone)",
    ),
    ev('speed', { object: ObjectWithSpeed, rule: LineRule, attributes: SpeedAttributes }).describe(
      'Speed measured around a line crossing (needs a calibration)',
    ),
    ev('red_light', { object: ObjectSchema, rule: SignalRule, attributes: RedLightAttributes, evidence }).describe(
      'An object crossed a stop line while its signal was red',
    ),
    ev('speeding', { object: ObjectWithSpeed, rule: z.discriminatedUnion('kind', [LineRule, ZoneRule]), attributes: SpeedingAttributes, evidence }).describe(
      'An object faster than the speed limit of a line or zone by more than the uncertainty of its measurement (needs a calibration)',
    ),
    ev('flow', { rule: LineRule, attributes: FlowAttributes }).describe('Traffic statistics of a line over one flow bin'),
    ev('camera_tamper', { attributes: CameraTamperAttributes }).describe(
      'The camera view was covered, blurred, moved, too dark, overexposed or frozen for tamper.raise_s (cleared: false), or that condition has gone (cleared: true). The camera status and health carry the active kinds',
    ),
  ]);
}

/** An event as analytics make it (no `seq` yet). */
export const EventDraftSchema = envelope(draftBase).describe('roadside traffic event (draft)');
/** An event as published on `{base}/events/{camera}`. */
export const WireEventSchema = envelope(wireBase).describe('roadside traffic event');

export type EventDraft = z.infer<typeof EventDraftSchema>;
export type StoredEvent = EventDraft & { seq: number };
export type WireEvent = z.infer<typeof WireEventSchema>;
export type EventOf<T extends EventType> = Extract<EventDraft, { type: T }>;
export type AttributesOf<T extends EventType> = EventOf<T>['attributes'];

/** What `makeEvent` needs: the type's fields minus the derived ones, with the capture time as epoch ms. */
export type EventInput<T extends EventType> = Omit<EventOf<T>, 'schema' | 'id' | 'seq' | 'priority' | 'captured_at'> & {
  captured_at_ms: number;
};

/** Makes event ids from the capture time (epoch ms): a fresh random UUIDv7 unless replaced (useEventIds). */
export type EventIdSource = (captured_at_ms: number) => string;

let eventId: EventIdSource = () => uuidv7();

/**
 * Replaces where `makeEvent` takes ids (offline analysis: `seededUuidv7`, so one clip gives the same ids on
 * every run) until the returned function restores the previous source. Process-wide: live agents never call it.
 */
export function useEventIds(source: EventIdSource): () => void {
  const previous = eventId;
  eventId = source;
  return () => {
    eventId = previous;
  };
}

/** Builds a draft event: envelope version, a fresh UUIDv7 (see useEventIds), the type's priority, `captured_at` in ISO 8601. */
export function makeEvent<T extends EventType>(input: EventInput<T> & { type: T }): EventOf<T> {
  const { captured_at_ms, type, device, site, camera, mono_ms, clock_synced, ...rest } = input;
  return {
    schema: EVENT_SCHEMA,
    id: eventId(captured_at_ms),
    device,
    site,
    camera,
    captured_at: isoTime(captured_at_ms),
    mono_ms,
    clock_synced,
    type,
    priority: PRIORITY[type],
    ...rest,
  } as unknown as EventOf<T>;
}

/** ISO 8601 in UTC ("…Z") from epoch ms. */
export function isoTime(epoch_ms: number): string {
  return new Date(epoch_ms).toISOString();
}

/** JSON Schema (draft 2020-12) of the wire event, for the center and the generated docs. */
export function eventJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(WireEventSchema, { io: 'output', target: 'draft-2020-12' }),
    $id: 'https://roadside-agent.invalid/event.schema.json',
    title: 'roadside traffic event (roadside.event/1)',
  };
}

// ---------------------------------------------------------------------------------------------------------
// UUIDv7 (RFC 9562 §5.7), monotonic within a millisecond (§6.2 method 1: a 42-bit counter in rand_a and the
// top of rand_b, seeded at random with its top bit clear each new millisecond, so it has room to count;
// should it still overflow, the timestamp borrows the next millisecond). A clock going backwards never makes
// ids go backwards: the last timestamp is kept until the clock catches up.

const COUNTER_LO = 2 ** 30;
const COUNTER_MAX = 2 ** 42 - 1;
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const pool = new Uint8Array(4096);
let poolAt = pool.length;
let lastMs = -1;
let counter = 0;

function random(bytes: number): Uint8Array {
  if (poolAt + bytes > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const out = pool.subarray(poolAt, poolAt + bytes);
  poolAt += bytes;
  return out;
}

function seedCounter(): number {
  const r = random(6);
  // 11 + 30 bits = 41 random bits, top bit of the 42-bit counter clear.
  return ((((r[0]! << 8) | r[1]!) & 0x7ff) * COUNTER_LO) + ((((r[2]! & 0x3f) << 24) | (r[3]! << 16) | (r[4]! << 8) | r[5]!) >>> 0);
}

/** A new UUIDv7 string; ids from one process sort in generation order. */
export function uuidv7(now_ms: number = Date.now()): string {
  let ms = Math.max(Math.floor(now_ms), lastMs);
  if (ms === lastMs) {
    counter++;
    if (counter > COUNTER_MAX) {
      ms++;
      counter = seedCounter();
    }
  } else {
    counter = seedCounter();
  }
  lastMs = ms;
  return formatUuidv7(ms, counter, random(4));
}

/**
 * Deterministic UUIDv7s for offline analysis: the timestamp is the event's capture time (never going back), the
 * 42-bit counter starts at a value drawn from `seed` and counts every id, the last 32 bits come from `seed`. The
 * same seed and the same capture times give the same ids; another seed (another clip or start) gives others.
 */
export function seededUuidv7(seed: string): EventIdSource {
  const h = createHash('sha256').update(seed).digest();
  let count = (h.readUIntBE(0, 6) % 2 ** 41) - 1; // top bit clear: room to count
  const tail = h.subarray(6, 10);
  let last = -1;
  return (now_ms) => {
    last = Math.max(Math.floor(now_ms), last);
    count++;
    if (count > COUNTER_MAX) throw new Error('seededUuidv7: more than 2^41 ids from one seed');
    return formatUuidv7(last, count, tail);
  };
}

/** The UUIDv7 string of a millisecond timestamp, a 42-bit counter (rand_a and the top of rand_b) and 4 bytes. */
function formatUuidv7(ms: number, counter: number, tail: Uint8Array): string {
  const hi = Math.floor(counter / COUNTER_LO); // 12 bits → rand_a
  const lo = counter % COUNTER_LO; // 30 bits → top of rand_b
  const b = [
    Math.floor(ms / 2 ** 40) & 0xff,
    Math.floor(ms / 2 ** 32) & 0xff,
    (ms >>> 24) & 0xff,
    (ms >>> 16) & 0xff,
    (ms >>> 8) & 0xff,
    ms & 0xff,
    0x70 | (hi >>> 8),
    hi & 0xff,
    0x80 | (lo >>> 24),
    (lo >>> 16) & 0xff,
    (lo >>> 8) & 0xff,
    lo & 0xff,
    tail[0]!,
    tail[1]!,
    tail[2]!,
    tail[3]!,
  ];
  let s = '';
  for (let i = 0; i < 16; i++) {
    s += HEX[b[i]!];
    if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
  }
  return s;
}

/** The millisecond timestamp inside a UUIDv7. */
export function uuidv7Time(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
