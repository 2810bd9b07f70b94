import { decodedFactory } from './decoded.js';
import { NANODET_DEFAULTS, nanodetFactory, type NanodetOptions } from './nanodet.js';
import type { DecoderFactory, DecoderName } from './types.js';
import { yolov8Factory } from './yolov8.js';

export * from './types.js';
export { NANODET_DEFAULTS, type NanodetOptions } from './nanodet.js';

export interface DecoderOptions {
  /** Overrides of the NanoDet conventions (tests; other NanoDet exports). */
  nanodet?: Partial<NanodetOptions>;
}

export function decoderFactory(name: DecoderName, opts: DecoderOptions = {}): DecoderFactory {
  switch (name) {
    case 'nanodet':
      return nanodetFactory({ ...NANODET_DEFAULTS, ...opts.nanodet });
    case 'yolov8':
      return yolov8Factory();
    case 'decoded':
      return decodedFactory();
  }
}
