import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onnxProblem } from '../../../config/onnx.js';
import { constantModel } from '../../../testkit/onnx-models.js';

const dir = mkdtempSync(join(tmpdir(), 'onnx-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, data: string | Uint8Array) => {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
};

describe('onnxProblem', () => {
  it('accepts the bundled model and a generated one', () => {
    expect(onnxProblem('models/nanodet.onnx')).toBeUndefined();
    const tiny = constantModel({ width: 32, height: 32, outputs: [{ name: 'out', dims: [1, 2], data: new Float32Array([1, 2]) }] });
    expect(onnxProblem(file('tiny.onnx', tiny))).toBeUndefined();
  });

  it('refuses a video, a text file, a directory, a missing file and a device', () => {
    expect(onnxProblem('tests/fixtures/clips/vtest-20s.mp4')).toMatch(/^not an ONNX model \(no protobuf field at byte 0\)/);
    expect(onnxProblem(file('text.onnx', 'this is a text file, not an ONNX model\n'))).toMatch(/^not an ONNX model/);
    mkdirSync(join(dir, 'dir.onnx'));
    expect(onnxProblem(join(dir, 'dir.onnx'))).toMatch(/^the model must be a regular file, not a directory/);
    expect(onnxProblem(join(dir, 'missing.onnx'))).toMatch(/^model file not found/);
    expect(onnxProblem('/dev/zero')).toMatch(/not a character device|, not a character device/);
  });

  it('refuses a protobuf without a graph, a truncated model and a wrong wire type', () => {
    // ir_version 8, producer_name "x": valid protobuf, no graph.
    expect(onnxProblem(file('nograph.onnx', Buffer.from([0x08, 0x08, 0x12, 0x01, 0x78, 0x12, 0x01, 0x78])))).toMatch(/no graph/);
    const model = readFileSync('models/nanodet.onnx').subarray(0, 4096);
    expect(onnxProblem(file('truncated.onnx', model))).toMatch(/truncated/);
    // Field 7 (graph) as a varint.
    expect(onnxProblem(file('wire.onnx', Buffer.from([0x08, 0x08, 0x38, 0x01, 0, 0, 0, 0])))).toMatch(/field 7 has the wrong type/);
  });

  it('follows a symlink to a real model', () => {
    const link = join(dir, 'link.onnx');
    symlinkSync(join(process.cwd(), 'models/nanodet.onnx'), link);
    expect(onnxProblem(link)).toBeUndefined();
  });
});
