// sharp (libvips) on first use: loading it costs ~12 MB of resident memory (measured), which a box that
// encodes no image here (no snapshots, no frame requests) never needs. Evidence JPEGs are ffmpeg's (ingest/jpeg.ts).
import type Sharp from 'sharp';

let loading: Promise<typeof Sharp> | undefined;

/**
 * The sharp function, loaded once. libvips' operation cache is off: every caller here encodes each image once,
 * so the cache would only hold memory, up to 50 MB (~10 MB less steady-state RSS, measured; docs/performance.md).
 */
export function loadSharp(): Promise<typeof Sharp> {
  loading ??= import('sharp').then(({ default: sharp }) => {
    sharp.cache(false);
    return sharp;
  });
  return loading;
}
