/** Text columns two spaces apart, each left- (default) or right-aligned; no trailing spaces. For CLI tables. */
export function columns(head: readonly string[], rows: readonly (readonly string[])[], align: ReadonlyArray<'left' | 'right'> = []): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r
      .map((v, i) => (align[i] === 'right' ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}
