// Structure-aware, seeded mutations of real fixture models (issue 10). A variant is a function of
// (seed, fixture list) only, so a failing case can be replayed from its seed.
//
// Families (one per variant, picked by the seed):
//  - wire:     the protobuf tree (wire-tree.ts): wire types, length prefixes that lie, varint
//              values, deleted / duplicated / renumbered / reordered fields, junk after a field;
//  - bytes:    bit flips, truncation, zeroed or inserted runs anywhere in the file;
//  - model:    the decoded ModelProto, re-encoded: tensor dims (absurd, negative, wrong rank),
//              declared input/output shapes and element types, graph edges (rewired or deleted
//              inputs, cycles, self-loops, two producers of one tensor, deleted nodes, nodes out
//              of order, missing or duplicate initializers), op types, domains, opsets,
//              attributes, very deep chains, deeply nested types;
//  - external: external-data entries: absolute, `..`, symlinks out of the folder (to a FIFO,
//              which blocks whoever opens it), offsets/lengths beyond the file, malformed numbers,
//              missing files, folders, the model file itself.
import { decodeModel, encodeModel } from '../../src/engine/onnx/codec';
import type { AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../../src/engine/onnx/types';
import { Rng } from '../../src/engine/random';
import { allFields, parseFields, serializeFields, type WireField } from './wire-tree';

export interface FixtureSource {
  name: string;
  bytes: Uint8Array;
  /** Files beside the model (external data), by relative name. */
  siblings?: Record<string, Uint8Array>;
}

export interface VariantFile {
  /** Path relative to the variant's folder. */
  name: string;
  bytes?: Uint8Array;
  /** Make a symbolic link to this path instead (relative to the harness's `outside` folder if it starts with '@outside/'). */
  symlinkTo?: string;
  /** Make a folder. */
  dir?: boolean;
}

export interface Variant {
  seed: number;
  fixture: string;
  family: 'wire' | 'bytes' | 'model' | 'external';
  /** What was done, for the record. */
  detail: string[];
  /** The model's file name in the variant folder. */
  model: string;
  files: VariantFile[];
}

const ABSURD_INTS: bigint[] = [0n, -1n, -(2n ** 31n), 2n ** 31n - 1n, 2n ** 32n, 2n ** 40n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 3n, 1000000007n];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

// ---------------------------------------------------------------------------------------------
// wire family

function mutateWire(rng: Rng, bytes: Uint8Array, detail: string[]): Uint8Array {
  const tree = parseFields(bytes);
  if (!tree) {
    detail.push('wire: fixture did not parse as fields; bit flip instead');
    return mutateBytes(rng, bytes, detail);
  }
  const n = 1 + rng.int(3);
  for (let k = 0; k < n; k++) {
    const all = allFields(tree);
    // Favour deep fields: they are where a decoder's bookkeeping is hardest.
    const deep = all.filter((f) => f.depth >= 2);
    const site = deep.length > 0 && rng.next() < 0.7 ? pick(rng, deep) : pick(rng, all);
    const f = site.field;
    const where = `field ${f.no} (wire ${f.wt}) at depth ${site.depth}`;
    switch (rng.int(10)) {
      case 0: {
        const wt = pick(rng, [0, 1, 2, 3, 4, 5, 6, 7].filter((w) => w !== f.wt));
        detail.push(`wire type of ${where} → ${wt}`);
        f.wt = wt;
        break;
      }
      case 1: {
        if (f.wt !== 2) {
          f.varint = pick(rng, ABSURD_INTS);
          f.fixed = undefined;
          f.bytes = undefined;
          f.children = undefined;
          f.wt = 0;
          detail.push(`${where} → varint ${f.varint}`);
          break;
        }
        const real = BigInt(f.children ? serializeFields(f.children).length : (f.bytes?.length ?? 0));
        f.lenOverride = BigInt.asUintN(64, pick(rng, [real + 1n, real - 1n, real + 1000n, 0n, 2n ** 31n, 2n ** 32n + real, 2n ** 63n, real * 2n + 7n]));
        detail.push(`length of ${where}: ${real} → ${f.lenOverride}`);
        break;
      }
      case 2: {
        const v = pick(rng, ABSURD_INTS);
        f.wt = 0;
        f.varint = BigInt.asUintN(64, v);
        f.fixed = f.bytes = f.children = undefined;
        detail.push(`${where} → varint ${v}`);
        break;
      }
      case 3:
        site.parent.splice(site.parent.indexOf(f), 1);
        detail.push(`deleted ${where}`);
        break;
      case 4:
        site.parent.splice(site.parent.indexOf(f), 0, structuredClone(f));
        detail.push(`duplicated ${where}`);
        break;
      case 5: {
        const no = pick(rng, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20, 22, 23, 25, 63]);
        detail.push(`renumbered ${where} → ${no}`);
        f.no = no;
        break;
      }
      case 6: {
        const i = site.parent.indexOf(f);
        const j = rng.int(site.parent.length);
        [site.parent[i], site.parent[j]] = [site.parent[j]!, site.parent[i]!];
        detail.push(`swapped ${where} with sibling ${j}`);
        break;
      }
      case 7: {
        const junk = new Uint8Array(1 + rng.int(6));
        for (let i = 0; i < junk.length; i++) junk[i] = rng.int(256);
        f.trailer = junk;
        detail.push(`junk ${[...junk].map((b) => b.toString(16)).join(' ')} after ${where}`);
        break;
      }
      case 8: {
        const payload = f.children ? serializeFields(f.children) : f.bytes;
        if (payload && payload.length > 0) {
          const copy = payload.slice();
          const flips = 1 + rng.int(4);
          for (let i = 0; i < flips; i++) copy[rng.int(copy.length)]! ^= 1 << rng.int(8);
          f.children = undefined;
          f.bytes = copy;
          detail.push(`${flips} bit flips inside ${where}`);
        } else {
          detail.push(`(empty payload at ${where})`);
        }
        break;
      }
      default: {
        // Cut the payload short but keep the length honest: a message missing its tail fields.
        if (f.children && f.children.length > 1) {
          const keep = rng.int(f.children.length);
          f.children = f.children.slice(0, keep);
          detail.push(`kept the first ${keep} fields of ${where}`);
        } else if (f.bytes && f.bytes.length > 1) {
          f.bytes = f.bytes.slice(0, rng.int(f.bytes.length));
          f.children = undefined;
          detail.push(`shortened payload of ${where}`);
        }
      }
    }
  }
  return serializeFields(tree);
}

// ---------------------------------------------------------------------------------------------
// bytes family

function mutateBytes(rng: Rng, bytes: Uint8Array, detail: string[]): Uint8Array {
  let out = bytes.slice();
  switch (rng.int(5)) {
    case 0: {
      const n = 1 + rng.int(16);
      for (let i = 0; i < n; i++) out[rng.int(out.length)]! ^= 1 << rng.int(8);
      detail.push(`${n} random bit flips`);
      break;
    }
    case 1: {
      const cut = rng.int(out.length);
      out = out.slice(0, cut);
      detail.push(`truncated to ${cut} of ${bytes.length} bytes`);
      break;
    }
    case 2: {
      const at = rng.int(out.length);
      const len = Math.min(out.length - at, 1 + rng.int(256));
      out.fill(pick(rng, [0, 0xff, 0x80]), at, at + len);
      detail.push(`filled ${len} bytes at ${at}`);
      break;
    }
    case 3: {
      const at = rng.int(out.length);
      const ins = new Uint8Array(1 + rng.int(32));
      for (let i = 0; i < ins.length; i++) ins[i] = rng.int(256);
      const grown = new Uint8Array(out.length + ins.length);
      grown.set(out.subarray(0, at));
      grown.set(ins, at);
      grown.set(out.subarray(at), at + ins.length);
      out = grown;
      detail.push(`inserted ${ins.length} random bytes at ${at}`);
      break;
    }
    default: {
      const len = rng.int(4096);
      out = new Uint8Array(len);
      for (let i = 0; i < len; i++) out[i] = rng.int(256);
      detail.push(`replaced by ${len} random bytes`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// model family

function tensorNames(g: GraphProto): string[] {
  const names = new Set<string>();
  for (const v of g.input) names.add(v.name);
  for (const t of g.initializer) if (t.name) names.add(t.name);
  for (const n of g.node) for (const o of n.output) if (o) names.add(o);
  return [...names];
}

function anyValueInfo(rng: Rng, g: GraphProto): ValueInfoProto | undefined {
  const all = [...g.input, ...g.output, ...g.valueInfo].filter((v) => v.type?.tensorType);
  return all.length ? pick(rng, all) : undefined;
}

/**
 * ValueInfoProto field 2 (type) as raw bytes: `depth` sequence types around a float tensor type,
 * built by hand (the codec's encoder is recursive; this is about the decoder's limits).
 */
function nestedTypeField(depth: number): Uint8Array {
  const varint = (n: number): number[] => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return out;
  };
  const core = [1 * 8 + 2, 2, 8, 1]; // TypeProto{tensor_type{elem_type: FLOAT}}
  // Each level wraps t as TypeProto{sequence_type (4){elem_type (1): t}}: only prefixes grow.
  const prefixes: number[][] = [];
  let len = core.length;
  for (let i = 0; i < depth; i++) {
    const inner = [1 * 8 + 2, ...varint(len)];
    const innerLen = inner.length + len;
    const outer = [4 * 8 + 2, ...varint(innerLen)];
    prefixes.push([...outer, ...inner]);
    len = outer.length + innerLen;
  }
  const head = [2 * 8 + 2, ...varint(len)];
  const out: number[] = [...head];
  for (let i = prefixes.length - 1; i >= 0; i--) for (const b of prefixes[i]!) out.push(b);
  out.push(...core);
  return Uint8Array.from(out);
}

function mutateModelOnce(rng: Rng, m: ModelProto, detail: string[]): void {
  const g = m.graph!;
  const nodes = g.node;
  const node = (): NodeProto | undefined => (nodes.length ? pick(rng, nodes) : undefined);
  const op = rng.int(24);
  switch (op) {
    case 0: {
      // initializer dims
      const t = g.initializer.length ? pick(rng, g.initializer) : undefined;
      if (!t) break;
      const before = t.dims.join('×');
      const how = rng.int(4);
      if (how === 0 && t.dims.length) t.dims[rng.int(t.dims.length)] = pick(rng, ABSURD_INTS);
      else if (how === 1) t.dims.push(pick(rng, [2n, 1000n, 2n ** 33n]));
      else if (how === 2) t.dims.pop();
      else t.dims = t.dims.map(() => pick(rng, ABSURD_INTS));
      detail.push(`initializer '${t.name}' dims ${before} → ${t.dims.join('×')}`);
      break;
    }
    case 1: {
      // declared shapes
      const v = anyValueInfo(rng, g);
      const dims = v?.type?.tensorType?.shape?.dim;
      if (!v || !dims) break;
      if (dims.length && rng.next() < 0.7) {
        const d = dims[rng.int(dims.length)]!;
        delete d.dimParam;
        d.dimValue = pick(rng, [...ABSURD_INTS, 100000n, 2n ** 20n]);
        detail.push(`declared dim of '${v.name}' → ${d.dimValue}`);
      } else {
        dims.push({ dimValue: pick(rng, [1n, 7n, 2n ** 31n]) }, ...(rng.next() < 0.5 ? [{ dimParam: 'zzz' }] : []));
        detail.push(`declared rank of '${v.name}' → ${dims.length}`);
      }
      break;
    }
    case 2: {
      const v = anyValueInfo(rng, g);
      if (!v) break;
      v.type!.tensorType!.elemType = pick(rng, [0, 2, 7, 8, 9, 10, 11, 14, 16, 17, 22, 99, -5]);
      detail.push(`element type of '${v.name}' → ${v.type!.tensorType!.elemType}`);
      break;
    }
    case 3: {
      // rewire an input to any tensor (often creates a cycle or a shape clash)
      const n = node();
      if (!n || !n.input.length) break;
      const i = rng.int(n.input.length);
      const to = pick(rng, tensorNames(g));
      detail.push(`'${n.name}' input ${i}: '${n.input[i]}' → '${to}'`);
      n.input[i] = to;
      break;
    }
    case 4: {
      // explicit cycle: an early node reads a later node's output
      if (nodes.length < 2) break;
      const a = rng.int(nodes.length - 1);
      const b = a + 1 + rng.int(nodes.length - a - 1);
      const early = nodes[a]!;
      const late = nodes[b]!;
      if (!early.input.length || !late.output.length) break;
      early.input[rng.int(early.input.length)] = late.output[0]!;
      detail.push(`cycle: node ${a} '${early.name}' reads output of node ${b} '${late.name}'`);
      break;
    }
    case 5: {
      const n = node();
      if (!n || !n.output.length) break;
      n.input.push(n.output[0]!);
      detail.push(`self-loop on '${n.name}'`);
      break;
    }
    case 6: {
      const n = node();
      if (!n || !n.input.length) break;
      const i = rng.int(n.input.length);
      detail.push(`'${n.name}' input ${i} ('${n.input[i]}') ${rng.next() < 0.5 ? 'deleted' : 'emptied'}`);
      if (rng.next() < 0.5) n.input.splice(i, 1);
      else n.input[i] = '';
      break;
    }
    case 7: {
      const n = node();
      if (!n) break;
      const missing = pick(rng, ['does_not_exist', '', ' ', 'ü/ñ\u0000x', 'x'.repeat(5000)]);
      n.input.push(missing);
      detail.push(`'${n.name}' reads missing tensor '${missing.slice(0, 20)}'`);
      break;
    }
    case 8: {
      // duplicate tensor name: two producers of one tensor
      if (nodes.length < 2) break;
      const a = pick(rng, nodes);
      const b = pick(rng, nodes);
      if (a === b || !a.output.length || !b.output.length) break;
      b.output[0] = a.output[0]!;
      detail.push(`'${b.name}' also produces '${a.output[0]}'`);
      break;
    }
    case 9: {
      if (!nodes.length) break;
      const i = rng.int(nodes.length);
      detail.push(`deleted node ${i} '${nodes[i]!.name}'`);
      nodes.splice(i, 1);
      break;
    }
    case 10: {
      if (nodes.length < 2) break;
      const i = rng.int(nodes.length);
      const j = rng.int(nodes.length);
      [nodes[i], nodes[j]] = [nodes[j]!, nodes[i]!];
      detail.push(`swapped nodes ${i} and ${j} (topological order broken)`);
      break;
    }
    case 11: {
      if (!g.initializer.length) break;
      const i = rng.int(g.initializer.length);
      detail.push(`deleted initializer '${g.initializer[i]!.name}'`);
      g.initializer.splice(i, 1);
      break;
    }
    case 12: {
      if (!g.initializer.length) break;
      const t = pick(rng, g.initializer);
      const dup: TensorProto = { ...t, dims: [1n], rawData: new Uint8Array(4) };
      delete dup.$wire;
      g.initializer.push(dup);
      detail.push(`duplicate initializer '${t.name}' with other dims`);
      break;
    }
    case 13: {
      const n = node();
      if (!n) break;
      const to = pick(rng, ['FrobnicateOp', 'Loop', 'If', 'Scan', 'Relu', 'MatMul', 'Gather', 'Reshape', 'Softmax', 'Conv', '', 'Constant']);
      detail.push(`'${n.name}' op ${n.opType} → '${to}'`);
      n.opType = to;
      break;
    }
    case 14: {
      const n = node();
      if (!n) break;
      n.domain = pick(rng, ['com.example.unknown', 'com.microsoft', 'ai.onnx.ml', 'ai.onnx.preview.training']);
      detail.push(`'${n.name}' domain → '${n.domain}'`);
      break;
    }
    case 15: {
      const how = rng.int(3);
      if (how === 0) m.opsetImport = [];
      else if (how === 1) for (const o of m.opsetImport) o.version = pick(rng, [1n, 0n, 999n, -3n]);
      else m.opsetImport.push({ domain: 'com.example.unknown', version: 1n });
      detail.push(`opset imports → ${m.opsetImport.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`).join(',') || 'none'}`);
      m.irVersion = rng.next() < 0.3 ? pick(rng, [0n, 1n, 99n]) : m.irVersion;
      break;
    }
    case 16: {
      const withAttr = nodes.filter((n) => n.attribute.length);
      if (!withAttr.length) break;
      const n = pick(rng, withAttr);
      const a: AttributeProto = pick(rng, n.attribute);
      const how = rng.int(4);
      if (how === 0) a.i = pick(rng, ABSURD_INTS);
      else if (how === 1) a.ints = a.ints.map(() => pick(rng, ABSURD_INTS));
      else if (how === 2) a.type = pick(rng, [0, 1, 2, 3, 4, 5, 99]);
      else n.attribute.splice(n.attribute.indexOf(a), 1);
      detail.push(`'${n.name}' attribute '${a.name}' mutated (${['i', 'ints', 'type', 'deleted'][how]})`);
      break;
    }
    case 17: {
      // very deep graph: a long Identity chain spliced into an edge
      const n = node();
      if (!n || !n.input.length) break;
      const depth = pick(rng, [100, 1000, 5000]);
      let prev = n.input[0]!;
      const chain: NodeProto[] = [];
      for (let i = 0; i < depth; i++) {
        const out = `fuzz_deep_${i}`;
        chain.push({ input: [prev], output: [out], opType: 'Identity', name: `/deep/Identity_${i}`, attribute: [], metadataProps: [] });
        prev = out;
      }
      n.input[0] = prev;
      nodes.splice(nodes.indexOf(n), 0, ...chain);
      detail.push(`${depth}-deep Identity chain before '${n.name}'`);
      break;
    }
    case 18: {
      // deeply nested type (protobuf recursion depth)
      const v = anyValueInfo(rng, g);
      if (!v) break;
      const depth = pick(rng, [40, 500, 5000, 20000]);
      delete v.type;
      v.$wire = { order: [1, 2], unknown: [{ no: 2, bytes: nestedTypeField(depth) }] };
      detail.push(`type of '${v.name}' nested ${depth} sequences deep`);
      break;
    }
    case 19: {
      // rename a graph input, or drop the graph outputs
      if (rng.next() < 0.5 && g.input.length) {
        const v = pick(rng, g.input);
        detail.push(`graph input '${v.name}' renamed`);
        v.name = `${v.name}_renamed`;
      } else {
        detail.push(`graph outputs ${rng.next() < 0.5 ? 'dropped' : 'point at a missing tensor'}`);
        if (rng.next() < 0.5) g.output = [];
        else for (const o of g.output) o.name = 'nowhere';
      }
      break;
    }
    case 20: {
      // node names: scopes that look like blocks but lie
      const n = node();
      if (!n) break;
      n.name = pick(rng, ['/blocks.99999999999999999999/MatMul', '/layer.-1/Add', '/h.3/', '////', '/layers.0/layers.0/layers.0/x', '']);
      detail.push(`a node renamed '${n.name}'`);
      break;
    }
    case 21: {
      // initializer data that disagrees with its dims
      const t = g.initializer.length ? pick(rng, g.initializer) : undefined;
      if (!t) break;
      if (t.rawData && t.rawData.length > 1) t.rawData = t.rawData.subarray(0, rng.int(t.rawData.length));
      else t.floatData = [1, 2, 3];
      t.dataType = rng.next() < 0.3 ? pick(rng, [0, 8, 14, 99]) : t.dataType;
      detail.push(`initializer '${t.name}' data length or type disagrees with dims`);
      break;
    }
    case 22: {
      // a subgraph attribute holding the whole graph (If with recursion of names)
      const n = node();
      if (!n) break;
      n.attribute.push({ name: 'then_branch', type: 5, g: structuredClone(g), floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] });
      detail.push(`'${n.name}' got a graph attribute (a copy of the graph)`);
      break;
    }
    default: {
      // graph with no nodes / no inputs
      if (rng.next() < 0.5) {
        g.input = g.input.filter((v) => g.initializer.some((t) => t.name === v.name));
        detail.push('graph inputs removed');
      } else {
        g.node = [];
        detail.push('all nodes removed');
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// external family

function externalize(t: TensorProto, entries: [string, string][]): void {
  t.externalData = entries.map(([key, value]) => ({ key, value }));
  t.dataLocation = 1;
  delete t.rawData;
  t.floatData = [];
}

function mutateExternal(rng: Rng, src: FixtureSource, m: ModelProto, detail: string[], files: VariantFile[], outside: string): void {
  const g = m.graph!;
  const candidates = g.initializer.filter((t) => t.dataType === 1 && (t.rawData?.length ?? 0) >= 64);
  const existing = g.initializer.filter((t) => t.dataLocation === 1);
  for (const [name, bytes] of Object.entries(src.siblings ?? {})) files.push({ name, bytes });
  const t = existing.length && rng.next() < 0.6 ? pick(rng, existing) : candidates.length ? pick(rng, candidates) : undefined;
  if (!t) {
    detail.push('no tensor to externalize');
    return;
  }
  const size = t.rawData?.length ?? Number(t.externalData.find((e) => e.key === 'length')?.value ?? 64);
  const data = t.rawData ? t.rawData.slice() : new Uint8Array(size);
  const how = rng.int(14);
  const ok = (loc: string, extra: [string, string][] = []): void => externalize(t, [['location', loc], ['offset', '0'], ['length', String(size)], ...extra]);
  switch (how) {
    case 0:
      ok('/etc/passwd');
      break;
    case 1:
      ok(`${outside}/fifo`); // an absolute path to a FIFO: opening it blocks
      break;
    case 2:
      ok('../outside.bin');
      break;
    case 3:
      ok('sub/../../fifo');
      break;
    case 4:
      files.push({ name: 'link.bin', symlinkTo: '@outside/fifo' });
      ok('link.bin');
      break;
    case 5:
      files.push({ name: 'sub', symlinkTo: '@outside' });
      ok('sub/fifo');
      break;
    case 6:
      files.push({ name: 'w.bin', bytes: data });
      externalize(t, [['location', 'w.bin'], ['offset', String(pick(rng, [size, size + 1, 2 ** 40, 2 ** 53 + 2]))], ['length', String(size)]]);
      break;
    case 7:
      files.push({ name: 'w.bin', bytes: data });
      externalize(t, [['location', 'w.bin'], ['offset', '0'], ['length', String(pick(rng, [size + 1, size * 1000, 2 ** 62, size - 1]))]]);
      break;
    case 8:
      files.push({ name: 'w.bin', bytes: data });
      externalize(t, [['location', 'w.bin'], ['offset', pick(rng, ['-4', '1e3', '0x10', ' ', '99999999999999999999999', '1.5'])], ['length', String(size)]]);
      break;
    case 9:
      ok(pick(rng, ['', 'missing.bin', 'a\u0000b', '.', 'C:\\w.bin', '\\\\server\\share\\w']));
      break;
    case 10:
      files.push({ name: 'adir', dir: true });
      ok('adir');
      break;
    case 11:
      ok('model.onnx'); // the model file itself as data: in the folder, but wrong bytes
      break;
    case 12:
      files.push({ name: 'loop.bin', symlinkTo: 'loop.bin' });
      ok('loop.bin');
      break;
    default:
      files.push({ name: 'w.bin', bytes: data });
      externalize(t, [['location', 'w.bin']]); // no offset/length: from type and shape
      if (rng.next() < 0.5) t.dims = [2n ** 40n];
  }
  detail.push(`tensor '${t.name}' external: ${t.externalData.map((e) => `${e.key}=${JSON.stringify(e.value).slice(0, 40)}`).join(' ')}${t.dims.length === 1 && t.dims[0] === 2n ** 40n ? ' dims 2^40' : ''}`);
}

// ---------------------------------------------------------------------------------------------

/** `outside`: absolute path of a folder outside every variant's folder, holding a FIFO named `fifo`. */
export function makeVariant(seed: number, fixtures: FixtureSource[], outside: string): Variant {
  const rng = new Rng(seed, 'fuzz');
  const src = pick(rng, fixtures);
  const r = rng.next();
  const family: Variant['family'] = r < 0.35 ? 'wire' : r < 0.45 ? 'bytes' : r < 0.85 ? 'model' : 'external';
  const detail: string[] = [];
  const files: VariantFile[] = [];
  let bytes: Uint8Array;
  if (family === 'wire') {
    bytes = mutateWire(rng, src.bytes, detail);
    for (const [name, b] of Object.entries(src.siblings ?? {})) files.push({ name, bytes: b });
  } else if (family === 'bytes') {
    bytes = mutateBytes(rng, src.bytes, detail);
    for (const [name, b] of Object.entries(src.siblings ?? {})) files.push({ name, bytes: b });
  } else {
    const m = decodeModel(src.bytes);
    if (family === 'model') {
      const n = 1 + rng.int(2);
      for (let i = 0; i < n; i++) mutateModelOnce(rng, m, detail);
      for (const [name, b] of Object.entries(src.siblings ?? {})) files.push({ name, bytes: b });
    } else {
      mutateExternal(rng, src, m, detail, files, outside);
    }
    bytes = encodeModel(m);
  }
  files.unshift({ name: 'model.onnx', bytes });
  return { seed, fixture: src.name, family, detail, model: 'model.onnx', files };
}
