// Writes the hostile-input corpus (issue 10) from the committed fixtures, deterministically:
//   node --import tsx test/corpus/make-corpus.ts
// Each file's expected outcome is in expected.json (kept by hand: add a case there when a bug is
// found). Cases that cannot be committed (an empty folder, FIFOs, multi-GB sparse files) are made
// at test time by corpus.test.ts.
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeModel, encodeModel } from '../../src/engine/onnx/codec';
import type { ModelProto, NodeProto } from '../../src/engine/onnx/types';
import { Rng } from '../../src/engine/random';

const HERE = __dirname;
const FIX = path.resolve(HERE, '..', 'fixtures');
const base = new Uint8Array(readFileSync(path.join(FIX, 'models', 'linear_blocks.onnx')));
const fresh = (): ModelProto => decodeModel(base.slice());

function put(rel: string, bytes: Uint8Array | string): void {
  const p = path.join(HERE, rel);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, bytes);
}
const model = (rel: string, m: ModelProto) => put(rel, encodeModel(m));
const node = (opType: string, input: string[], output: string[], name: string, domain?: string): NodeProto => ({
  input,
  output,
  opType,
  name,
  attribute: [],
  metadataProps: [],
  ...(domain ? { domain } : {}),
});

function npy(descr: string, shape: number[], body: Uint8Array, fortran = false): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  out.set(body, 10 + header.length);
  return out;
}
const f32 = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);

async function main(): Promise<void> {
  for (const d of ['models', 'external', 'data']) rmSync(path.join(HERE, d), { recursive: true, force: true });
  const rng = new Rng(2026, 'corpus');

  // --- bytes that are not (whole) ONNX models
  put('models/zero_length.onnx', new Uint8Array(0));
  put('models/truncated_half.onnx', base.slice(0, base.length >> 1));
  put('models/truncated_tail.onnx', base.slice(0, base.length - 3));
  const flipped = base.slice();
  flipped[0] ^= 0x07; // the first tag's wire type: ir_version (varint) becomes an end-group tag
  put('models/bitflip_first_tag.onnx', flipped);
  // A length prefix inside the graph made to lie (the byte after the graph tag 0x3a).
  const lie = base.slice();
  const graphTag = lie.indexOf(0x3a);
  lie[graphTag + 1] = 0x7f;
  put('models/bitflip_graph_length.onnx', lie);
  const random = new Uint8Array(4096);
  for (let i = 0; i < random.length; i++) random[i] = rng.int(256);
  put('models/random_bytes.onnx', random);
  // Other formats under an .onnx name.
  put('models/zip_archive.onnx', Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 8, 0, ...new TextEncoder().encode('archive/data.pkl')]));
  put('models/pytorch_pickle.onnx', Uint8Array.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x28, 0x58, 0x05, 0, 0, 0, 0x73, 0x74, 0x61, 0x74, 0x65, 0x2e]));
  put('models/text_file.onnx', 'This is not a model, it is a README.\nSee https://onnx.ai\n');
  put('models/numpy_array.onnx', npy('<f4', [2, 2], f32([1, 2, 3, 4])));

  // --- graphs that decode but are broken
  let m = fresh();
  m.graph!.input[0]!.type!.tensorType!.shape!.dim[1] = { dimValue: 1000000007n };
  model('models/absurd_input_dim.onnx', m);
  m = fresh();
  m.graph!.initializer[0]!.dims = [2n ** 40n, 2n ** 40n];
  model('models/absurd_initializer_dims.onnx', m);
  m = fresh();
  m.graph!.initializer[1]!.dims = [-16n];
  model('models/negative_initializer_dim.onnx', m);
  m = fresh();
  m.graph!.node[0]!.input[0] = '/blocks.1/Add_output_0'; // block 0 reads block 1's output
  model('models/graph_cycle.onnx', m);
  m = fresh();
  m.graph!.node[3]!.input.push(m.graph!.node[3]!.output[0]!);
  model('models/self_loop.onnx', m);
  m = fresh();
  m.graph!.node[2]!.output[0] = '/blocks.0/MatMul_output_0';
  model('models/duplicate_tensor_name.onnx', m);
  m = fresh();
  m.graph!.initializer.push({ ...m.graph!.initializer[0]!, $wire: undefined });
  model('models/duplicate_initializer.onnx', m);
  m = fresh();
  m.graph!.initializer.splice(2, 1); // blocks.1.A
  model('models/missing_initializer.onnx', m);
  m = fresh();
  m.graph!.node[4]!.input[0] = 'no_such_tensor';
  model('models/missing_tensor.onnx', m);
  m = fresh();
  m.graph!.output[0]!.name = 'never_produced';
  model('models/missing_graph_output.onnx', m);
  m = fresh();
  m.graph!.initializer[1]!.rawData = m.graph!.initializer[1]!.rawData!.subarray(0, 10);
  model('models/initializer_short_data.onnx', m);
  m = fresh();
  m.graph!.node[5]!.opType = 'FrobnicateOp';
  model('models/unknown_op.onnx', m);
  m = fresh();
  m.graph!.node[5]!.domain = 'com.example.unknown';
  model('models/unknown_domain.onnx', m);
  m = fresh();
  m.graph!.node[5]!.domain = 'com.example.unknown';
  m.opsetImport.push({ domain: 'com.example.unknown', version: 1n });
  model('models/unknown_domain_imported.onnx', m);
  m = fresh();
  m.opsetImport = [{ domain: '', version: 999n }];
  model('models/future_opset.onnx', m);
  m = fresh();
  m.graph!.node = [];
  model('models/no_nodes.onnx', m);

  // Very deep: 3000 Identity nodes inside block 1, and a type nested 300 levels deep.
  m = fresh();
  {
    const g = m.graph!;
    const chain: NodeProto[] = [];
    let prev = '/blocks.1/MatMul_output_0';
    for (let i = 0; i < 3000; i++) {
      chain.push(node('Identity', [prev], [`/blocks.1/deep_${i}`], `/blocks.1/Identity_${i}`));
      prev = `/blocks.1/deep_${i}`;
    }
    g.node[3]!.input[0] = prev;
    g.node.splice(3, 0, ...chain);
  }
  model('models/deep_graph_3000.onnx', m);
  {
    // ValueInfoProto.type (field 2) of the input, replaced by 300 nested sequence types (hand-built bytes).
    const varint = (n: number): number[] => {
      const o: number[] = [];
      while (n > 0x7f) {
        o.push((n & 0x7f) | 0x80);
        n >>>= 7;
      }
      o.push(n);
      return o;
    };
    let t = [0x0a, 2, 8, 1];
    for (let i = 0; i < 300; i++) {
      const inner = [0x0a, ...varint(t.length), ...t];
      t = [0x22, ...varint(inner.length), ...inner];
    }
    m = fresh();
    const v = m.graph!.input[0]!;
    delete v.type;
    v.$wire = { order: [1, 2], unknown: [{ no: 2, bytes: Uint8Array.from([0x12, ...varint(t.length), ...t]) }] };
    model('models/nested_types_300.onnx', m);
  }

  // --- external data locations (refused before anything is read)
  const externalModel = (loc: string, extra: Record<string, string> = {}): ModelProto => {
    const mm = fresh();
    const w = mm.graph!.initializer[0]!;
    w.externalData = Object.entries({ location: loc, offset: '0', length: '1024', ...extra }).map(([key, value]) => ({ key, value }));
    w.dataLocation = 1;
    delete w.rawData;
    return mm;
  };
  const wBytes = fresh().graph!.initializer[0]!.rawData!;
  model('external/absolute/model.onnx', externalModel('/etc/passwd'));
  model('external/dotdot/model.onnx', externalModel('../target/secret.bin'));
  model('external/dotdot_nested/model.onnx', externalModel('sub/../../target/secret.bin'));
  model('external/symlink_out/model.onnx', externalModel('link.bin'));
  symlinkSync('../target/secret.bin', path.join(HERE, 'external/symlink_out/link.bin'));
  model('external/symlink_dir_out/model.onnx', externalModel('sub/secret.bin'));
  symlinkSync('../target', path.join(HERE, 'external/symlink_dir_out/sub'));
  put('external/target/secret.bin', new Uint8Array(4096).fill(0x5a));
  model('external/offset_beyond/model.onnx', externalModel('w.bin', { offset: '4096' }));
  put('external/offset_beyond/w.bin', wBytes);
  model('external/length_beyond/model.onnx', externalModel('w.bin', { length: '1048576' }));
  put('external/length_beyond/w.bin', wBytes);
  model('external/offset_not_a_number/model.onnx', externalModel('w.bin', { offset: '0x10' }));
  put('external/offset_not_a_number/w.bin', wBytes);
  model('external/missing_file/model.onnx', externalModel('w.bin'));
  model('external/folder_as_file/model.onnx', externalModel('w.bin'));
  mkdirSync(path.join(HERE, 'external/folder_as_file/w.bin'));
  put('external/folder_as_file/w.bin/.keep', '');
  model('external/valid/model.onnx', externalModel('w.bin'));
  put('external/valid/w.bin', wBytes);

  // --- calibration data for linear_blocks (input x: float32 [batch, 16])
  const rows = (n: number, fill: (i: number) => number) => f32(Array.from({ length: n * 16 }, (_, i) => fill(i)));
  put('data/valid.npy', npy('<f4', [8, 16], rows(8, (i) => Math.sin(i))));
  put('data/wrong_shape.npy', npy('<f4', [8, 7], f32(Array.from({ length: 56 }, (_, i) => i))));
  put('data/wrong_rank.npy', npy('<f4', [8, 4, 4], rows(8, (i) => i)));
  put('data/wrong_dtype_string.npy', npy('<U4', [8, 16], new Uint8Array(8 * 16 * 16)));
  put('data/wrong_dtype_complex.npy', npy('<c8', [8, 16], new Uint8Array(8 * 16 * 8)));
  put('data/wrong_dtype_object.npy', npy('|O', [8, 16], new Uint8Array(64)));
  put('data/nan.npy', npy('<f4', [8, 16], rows(8, (i) => (i === 37 ? NaN : i))));
  put('data/inf.npy', npy('<f4', [8, 16], rows(8, (i) => (i === 70 ? -Infinity : i))));
  put('data/no_rows.npy', npy('<f4', [0, 16], new Uint8Array(0)));
  put('data/declares_huge_shape.npy', npy('<f4', [1099511627776, 16], rows(8, (i) => i)));
  put('data/truncated_body.npy', npy('<f4', [8, 16], rows(8, (i) => i)).subarray(0, 200));
  put('data/bad_header.npy', Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 10, 0, ...new TextEncoder().encode('{garbage!\n')]));
  put('data/not_numpy.npy', 'x,y\n1,2\n');
  put('data/truncated.npz', Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 0, 0]));
  put('data/labels_float.npy', npy('<f4', [8], f32([0, 1, 0, 1, 0, 1, 0, 1])));
  // Images for vit_tiny (1×16×16): one readable, one random bytes, one cut short.
  const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 10, g: 200, b: 30 } } }).png().toBuffer();
  put('data/images_corrupt/0/good.png', png);
  put('data/images_corrupt/0/random.png', random.subarray(0, 300));
  put('data/images_corrupt/1/truncated.png', png.subarray(0, png.length >> 1));
  put('data/images_not_images/0/notes.png', 'not an image');
  console.log('corpus written');
}

void main();
