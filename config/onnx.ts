// Is a file plausibly an ONNX model? Checked by `config check` so a video file or a directory given as the
// model is a config problem (exit 78), not a detector crash at start (exit 1). An ONNX file is a protobuf
// ModelProto: its top-level fields are walked by tag and length (a few small reads, whatever the file size)
// and it must hold an ir_version (field 1, varint) and a graph (field 7, length-delimited).
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { fileKind } from './fs-checks.js';

const IR_VERSION = 1;
const GRAPH = 7;
/** ModelProto fields that are varints; every other known field is length-delimited (onnx.proto3). */
const VARINT_FIELDS = new Set([IR_VERSION, 5 /* model_version */]);
const BYTES_FIELDS = new Set([2, 3, 4, 6, GRAPH, 8, 14, 20, 25]);
/** Top-level fields read before giving up on finding the graph. */
const MAX_FIELDS = 256;
/** Highest IR version a model could plausibly carry (11 in 2025). */
const MAX_IR_VERSION = 100;

class Reader {
  private readonly buf = Buffer.alloc(10);
  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  /** A varint at `pos`: its value (up to 2^53) and the position after it, or undefined when malformed. */
  varint(pos: number): { value: number; next: number } | undefined {
    const n = readSync(this.fd, this.buf, 0, Math.min(10, this.size - pos), pos);
    let value = 0;
    for (let i = 0; i < n; i++) {
      const b = this.buf[i]!;
      value += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return value > Number.MAX_SAFE_INTEGER ? undefined : { value, next: pos + i + 1 };
    }
    return undefined;
  }
}

/** Why `file` is not an ONNX model the detector could load, or undefined when it looks like one. */
export function onnxProblem(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? `model file not found: ${file}` : `cannot read the model file (${code ?? 'unknown error'}): ${file}`;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return `the model must be a regular file, not ${fileKind(st)}: ${file}`;
    return walk(new Reader(fd, st.size), file);
  } catch (err) {
    return `cannot read the model file (${(err as NodeJS.ErrnoException).code ?? 'unknown error'}): ${file}`;
  } finally {
    closeSync(fd);
  }
}

function walk(r: Reader, file: string): string | undefined {
  const notOnnx = (why: string) => `not an ONNX model (${why}): ${file}`;
  if (r.size < 8) return notOnnx(`${r.size} bytes`);
  let ir: number | undefined;
  let graph = false;
  let pos = 0;
  for (let fields = 0; pos < r.size && fields < MAX_FIELDS && !(ir !== undefined && graph); fields++) {
    const tag = r.varint(pos);
    if (!tag) return notOnnx(`malformed protobuf at byte ${pos}`);
    const field = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    if (field === 0) return notOnnx(`no protobuf field at byte ${pos}`);
    if ((VARINT_FIELDS.has(field) && wire !== 0) || (BYTES_FIELDS.has(field) && wire !== 2)) return notOnnx(`field ${field} has the wrong type at byte ${pos}`);
    pos = tag.next;
    switch (wire) {
      case 0: {
        const v = r.varint(pos);
        if (!v) return notOnnx(`malformed protobuf at byte ${pos}`);
        if (field === IR_VERSION) ir = v.value;
        pos = v.next;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const len = r.varint(pos);
        if (!len) return notOnnx(`malformed protobuf at byte ${pos}`);
        if (field === GRAPH && len.value > 0) graph = true;
        pos = len.next + len.value;
        break;
      }
      default:
        return notOnnx(`protobuf wire type ${wire} at byte ${pos}`);
    }
    if (pos > r.size) return notOnnx('truncated');
  }
  if (ir === undefined) return notOnnx('no ir_version');
  if (ir < 1 || ir > MAX_IR_VERSION) return notOnnx(`ir_version ${ir}`);
  if (!graph) return notOnnx('no graph');
  return undefined;
}
