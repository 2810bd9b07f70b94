/**
 * Vietnamese number plates: what the OCR read is turned into, and whether it fits the national format.
 *
 *   canonical = <province: 2 digits><series>-<number: 4 digits | 5 digits as 123.45>
 *   one-line car plate       51F-123.45        printed as 51F-123.45
 *   two-line motorbike plate 59X1-234.56       printed as 59-X1 over 234.56
 *
 * Tables after Circular 24/2023/TT-BCA (annexes on plate symbols); provinces merged in 2025 keep their
 * old codes on the plates already issued.
 */

/**
 * Province codes 11-99 that are not assigned to any province or agency (13: former Hà Bắc; 42, 44-46, 87,
 * 91, 96: never issued). 80 is the national traffic police department's own series.
 */
const UNASSIGNED_PROVINCES = new Set(['13', '42', '44', '45', '46', '87', '91', '96']);

/** Single series letters (I, J, O, Q, W are not used: they read like 1, 0 or other letters). R: trailers. */
const SERIES_LETTERS = new Set('ABCDEFGHKLMNPRSTUVXYZ');

/**
 * Two-letter series: special registrations (Đ is read and written as D) and mopeds under 50 cm³ (A + a series
 * letter). Letter + digit series (X1, B2) of motorbikes follow the rule in `seriesOk`.
 */
export const SPECIAL_SERIES: Readonly<Record<string, string>> = {
  LD: 'enterprises with foreign capital, foreign-leased vehicles',
  KT: 'military-run enterprises',
  NG: 'diplomatic missions',
  NN: 'foreign organisations and individuals',
  QT: 'international organisations',
  CV: 'technical and administrative staff of missions',
  HC: 'vehicles restricted to an area',
  TD: 'TĐ: domestically assembled vehicles (pilot series)',
  MD: 'MĐ: electric motorbikes (also MD + digit)',
};

const MOPED_SECOND = new Set('ABCDEFGHKLMNPSTUVXYZ');

/**
 * OCR confusions by position. In a digit position a letter that looks like a digit becomes that digit; in a
 * letter position the reverse. 0 (and O) become D in a letter position: O is not a series letter; 7 becomes
 * Z (a plate font's Z reads as 7 far more often than a T does).
 */
const TO_DIGIT: Readonly<Record<string, string>> = { O: '0', Q: '0', D: '0', U: '0', I: '1', L: '1', J: '1', Z: '2', A: '4', S: '5', G: '6', T: '7', B: '8' };
const TO_LETTER: Readonly<Record<string, string>> = { '0': 'D', O: 'D', '2': 'Z', '4': 'A', '5': 'S', '6': 'G', '7': 'Z', '8': 'B' };

/** What a plate's border or frame edge is misread as, at either end of a line. */
const STRAY = /^[1IJL]$/;

export interface PlateFormat {
  /** Canonical text (`51F-123.45`), or the cleaned OCR text when no parse fits. */
  text: string;
  valid_format: boolean;
  /** Characters changed by the confusion maps (0 for a clean read). */
  substitutions: number;
  province?: string;
  series?: string;
  /** Number digits without the dot. */
  number?: string;
}

function seriesOk(s: string): boolean {
  if (s.length === 1) return SERIES_LETTERS.has(s);
  const [a = '', b = '', c] = s;
  if (s.length === 2) {
    if (/[1-9]/.test(b)) return SERIES_LETTERS.has(a) && a !== 'R'; // motorbikes: X1
    return s in SPECIAL_SERIES || (a === 'A' && MOPED_SECOND.has(b));
  }
  return s.length === 3 && s.slice(0, 2) === 'MD' && c !== undefined && /[1-9]/.test(c);
}

/** Forces `ch` to a digit (or a letter), counting a substitution; undefined when it cannot be one. */
function asDigit(ch: string, subs: { n: number }): string | undefined {
  if (/[0-9]/.test(ch)) return ch;
  const d = TO_DIGIT[ch];
  if (d !== undefined) subs.n++;
  return d;
}
function asLetter(ch: string, subs: { n: number }): string | undefined {
  const l = TO_LETTER[ch];
  if (l === undefined) return /[A-Z]/.test(ch) ? ch : undefined;
  subs.n++;
  return l;
}

/** The series read from `chars`: a letter first, then letters or one digit, whichever the tables accept. */
function parseSeries(chars: string, subs: { n: number }): string | undefined {
  const first = asLetter(chars[0] ?? '', subs);
  if (first === undefined) return undefined;
  if (chars.length === 1) return seriesOk(first) ? first : undefined;
  // Letter + digit (motorbikes) or two letters (special series): try both readings of the rest, fewer changes first.
  const options: Array<{ s: string; n: number }> = [];
  for (const mode of ['digit', 'letter'] as const) {
    const local = { n: 0 };
    let rest = '';
    for (let i = 1; i < chars.length; i++) {
      const last = i === chars.length - 1;
      // MD1: the third character of a three-character series is a digit.
      const wantDigit = mode === 'digit' ? last : chars.length === 3 && last;
      const ch = wantDigit ? asDigit(chars[i]!, local) : asLetter(chars[i]!, local);
      if (ch === undefined) break;
      rest += ch;
    }
    if (rest.length === chars.length - 1 && seriesOk(first + rest)) options.push({ s: first + rest, n: local.n });
  }
  options.sort((a, b) => a.n - b.n);
  const best = options[0];
  if (!best) return undefined;
  subs.n += best.n;
  return best.s;
}

export function formatNumber(digits: string): string {
  return digits.length === 5 ? `${digits.slice(0, 3)}.${digits.slice(3)}` : digits;
}

/**
 * Where the read shows boundaries, as indexes into its letters and digits. A line break or a `-` is where the
 * number starts (hard), except a `-` right after the province (the top line of a motorbike plate, `59-X1`);
 * a space (from OCR, or between regions joined on one line) probably is (soft).
 */
function boundaries(lines: readonly string[]): { hard: number[]; soft: number[] } {
  const hard: number[] = [];
  const soft: number[] = [];
  let idx = 0;
  lines.forEach((line, i) => {
    if (i > 0) hard.push(idx);
    for (const ch of line) {
      if (/[0-9A-Z]/.test(ch)) idx++;
      else if (ch === '-' && idx !== 2) hard.push(idx);
      else if (/\s/.test(ch)) soft.push(idx);
    }
  });
  return { hard, soft };
}

/**
 * Normalises an OCR read into the canonical form and checks it against the format. `raw` is one line, or the
 * lines of a two-line plate top first. Every split of the letters and digits into province, series (1-3
 * characters) and number (4-5 digits) is tried, also with one stray character dropped at either end (a plate
 * border read as 1, I, J or L). A split must start the number at a line break or `-` of the read when it has
 * any (see `boundaries`). The split with the lowest cost wins: 2 per substitution, 2 per dropped character,
 * 3 when the read has spaces and the number starts at none, 1 for a 4-digit number (old plates: without other
 * evidence the 5-digit reading is likelier).
 */
export function normalizePlate(raw: string | readonly string[]): PlateFormat {
  const lines = (typeof raw === 'string' ? raw.split('\n') : [...raw]).map((l) => l.toUpperCase().replace(/Đ/g, 'D'));
  const chars = lines.join('').replace(/[^0-9A-Z]/g, '');
  const { hard, soft } = boundaries(lines);

  let best: { cost: number; f: PlateFormat } | undefined;
  for (let lead = 0; lead <= 1; lead++) {
    for (let trail = 0; trail <= 1; trail++) {
      // Only a character a plate's border reads as may be dropped.
      if ((lead && !STRAY.test(chars[0] ?? '')) || (trail && !STRAY.test(chars[chars.length - 1] ?? ''))) continue;
      const body = chars.slice(lead, chars.length - trail);
      for (const numLen of [5, 4]) {
        for (let serLen = 1; serLen <= 3; serLen++) {
          if (body.length !== 2 + serLen + numLen) continue;
          const numStart = lead + 2 + serLen;
          if (hard.length > 0 && !hard.includes(numStart)) continue;
          const offSoft = hard.length === 0 && soft.length > 0 && !soft.includes(numStart);
          const subs = { n: 0 };
          const province = [...body.slice(0, 2)].map((c) => asDigit(c, subs)).join('');
          if (province.length !== 2 || UNASSIGNED_PROVINCES.has(province) || province < '11') continue;
          const series = parseSeries(body.slice(2, 2 + serLen), subs);
          if (series === undefined) continue;
          const number = [...body.slice(2 + serLen)].map((c) => asDigit(c, subs)).join('');
          if (number.length !== numLen) continue;
          const cost = 2 * subs.n + 2 * (lead + trail) + (offSoft ? 3 : 0) + (numLen === 4 ? 1 : 0);
          if (best && best.cost <= cost) continue;
          const text = `${province}${series}-${formatNumber(number)}`;
          best = { cost, f: { text, valid_format: true, substitutions: subs.n, province, series, number } };
        }
      }
    }
  }
  return best?.f ?? { text: lines.map((l) => l.replace(/[^0-9A-Z.-]/g, '')).filter(Boolean).join('-'), valid_format: false, substitutions: 0 };
}

/** The canonical text is a valid plate (re-parsing it changes nothing). */
export function isCanonicalPlate(text: string): boolean {
  const f = normalizePlate(text);
  return f.valid_format && f.substitutions === 0 && f.text === text;
}
