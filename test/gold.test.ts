// Gold cross-checks against PyTorch 1.13 (float32, CPU): fixtures written by
// test/fixtures/make_gold.py (see there for the file layout), loaded through m2kd's own
// safetensors reader and loadModelEntries into BasicBlock / ResNet32, recomputed by the
// engine, compared per tensor with max|ours - torch| <= 1e-4 * max(1, max|torch|).
import t from 'tap';
import * as fs from 'fs';
import * as path from 'path';
import { Tensor, Rng, ops, noGrad } from '../src/engine';
import { BasicBlock, ResNet32, Module } from '../src/nn';
import { readSafetensors, loadModelEntries, entryToTensor, StEntry } from '../src/io';

const REL_TOL = 1e-4;
/** the assertions used here (a subtest's `t` has them) */
type TT = Pick<typeof t, 'ok' | 'same' | 'equal' | 'fail'>;

function goldDir(): string {
  const candidates = [path.resolve(__dirname, 'fixtures', 'gold'), path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'gold')];
  for (const c of candidates) if (fs.existsSync(path.join(c, 'resnet32.io.safetensors'))) return c;
  throw new Error(`gold fixtures not found (looked in ${candidates.join(', ')}); run /usr/bin/python3 test/fixtures/make_gold.py`);
}
const GOLD = goldDir();

// Reads a fixture with m2kd's readSafetensors. The entries' bytes are re-copied into fresh,
// offset-0 Uint8Arrays so that the numeric checks do not depend on how the reader shares
// memory: readSafetensors used to return Node Buffer *views* into the file (Buffer#slice does
// not copy), which entryToTensor then read from the start of the file's ArrayBuffer (fixed on
// main in 72f7ca7); the first test below pins that as a regression test.
function load(name: string): { entries: Map<string, StEntry>; metadata: Record<string, string> } {
  const f = readSafetensors(path.join(GOLD, name));
  const entries = new Map<string, StEntry>();
  for (const [n, e] of f.entries) entries.set(n, { dtype: e.dtype, shape: e.shape, data: new Uint8Array(e.data) });
  return { entries, metadata: f.metadata };
}

function f32(e: StEntry | undefined, what: string): Float32Array {
  if (!e) throw new Error(`fixture tensor '${what}' missing`);
  if (e.dtype !== 'F32') throw new Error(`fixture tensor '${what}' is ${e.dtype}, expected F32`);
  const c = new Uint8Array(e.data); // a real copy, offset 0, aligned
  return new Float32Array(c.buffer, 0, c.length / 4);
}

function i64(e: StEntry | undefined, what: string): number {
  if (!e || e.dtype !== 'I64') throw new Error(`fixture tensor '${what}' missing or not I64`);
  return Number(new DataView(e.data.buffer, e.data.byteOffset, 8).getBigInt64(0, true));
}

interface Cmp {
  maxAbsErr: number;
  maxAbsRef: number;
  bound: number;
}

function compare(ours: Float32Array, ref: Float32Array): Cmp {
  let maxAbsErr = 0, maxAbsRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    // NaN in ours must fail: (NaN > x) is false, so test the negation
    if (!(d <= maxAbsErr)) maxAbsErr = Number.isNaN(d) ? Infinity : d;
    maxAbsRef = Math.max(maxAbsRef, Math.abs(ref[i]));
  }
  return { maxAbsErr, maxAbsRef, bound: REL_TOL * Math.max(1, maxAbsRef) };
}

function checkClose(tt: TT, what: string, ours: Tensor | null | undefined, ref: StEntry | undefined): void {
  if (!ours) {
    tt.fail(`${what}: no tensor on our side (gradient not computed?)`);
    return;
  }
  if (!ref) {
    tt.fail(`${what}: fixture missing`);
    return;
  }
  tt.same([...ours.shape], ref.shape, `${what}: shape`);
  const r = f32(ref, what);
  const o = ours.toFloat32();
  if (o.length !== r.length) {
    tt.fail(`${what}: ${o.length} elements vs ${r.length}`);
    return;
  }
  const c = compare(o, r);
  tt.ok(
    c.maxAbsErr <= c.bound,
    `${what}: max|ours-torch| = ${c.maxAbsErr.toExponential(3)} <= ${c.bound.toExponential(3)} (max|torch| = ${c.maxAbsRef.toPrecision(4)})`,
  );
}

function checkBuffersAndCounters(tt: TT, model: Module, io: Map<string, StEntry>): void {
  for (const [n, b] of model.namedBuffers()) checkClose(tt, `running stat ${n}`, b, io.get(`after.${n}`));
  for (const [n, c] of model.namedCounters()) tt.equal(c.get(), i64(io.get(`after.${n}`), n), `${n} after the step`);
}

t.test('readSafetensors + entryToTensor give the stored values (file on disk)', async (tt) => {
  // R of block_s2, as written by PyTorch; compared with a decode of an independent byte copy
  const raw = readSafetensors(path.join(GOLD, 'block_s2.io.safetensors')).entries.get('R')!;
  const ref = f32(raw, 'R');
  const viaIo = entryToTensor(raw, 'R').toFloat32();
  const c = compare(viaIo, ref);
  tt.ok(c.maxAbsErr === 0, `entryToTensor(readSafetensors(file).entries.get('R')) equals the file's floats (max err ${c.maxAbsErr})`);
  const blk = new BasicBlock(16, 32, 2, 'A', new Rng(5));
  const model = readSafetensors(path.join(GOLD, 'block_s2.model.safetensors')).entries;
  loadModelEntries(blk, model, 'block_s2.model.safetensors');
  const w = f32(model.get('conv1.weight'), 'conv1.weight');
  tt.ok(compare(blk.conv1.weight.toFloat32(), w).maxAbsErr === 0, 'loadModelEntries(readSafetensors(file)) loads the stored conv1.weight');
  blk.dispose();
});

for (const [tag, inPlanes, planes, stride] of [
  ['block_s2', 16, 32, 2],
  ['block_id', 16, 16, 1],
] as const) {
  t.test(`BasicBlock ${inPlanes}->${planes} stride ${stride} (train mode) matches PyTorch`, async (tt) => {
    const model = load(`${tag}.model.safetensors`).entries;
    const io = load(`${tag}.io.safetensors`).entries;
    const blk = new BasicBlock(inPlanes, planes, stride, 'A', new Rng(5));
    tt.equal(blk.shortcut.kind, stride === 1 ? 'identity' : 'A', 'shortcut kind');
    loadModelEntries(blk, model, `${tag}.model.safetensors`);
    tt.equal(blk.bn1.numBatchesTracked, 7, 'num_batches_tracked loaded from I64');
    blk.train();

    const xe = io.get('input')!;
    const x = Tensor.fromArray(f32(xe, 'input'), xe.shape, { requiresGrad: true });
    const re = io.get('R')!;
    const r = Tensor.fromArray(f32(re, 'R'), re.shape);
    const out = blk.forward(x);
    checkClose(tt, 'output', out, io.get('output'));
    const loss = ops.sum(ops.mul(out, r));
    loss.backward();
    checkClose(tt, 'grad input', x.grad, io.get('grad.input'));
    for (const [n, p] of blk.namedParameters()) checkClose(tt, `grad ${n}`, p.grad, io.get(`grad.${n}`));
    checkBuffersAndCounters(tt, blk, io);
    blk.zeroGrad();
    blk.dispose();
  });
}

t.test('ResNet-32 logits match PyTorch in eval and train mode', async (tt) => {
  const { entries, metadata } = load('resnet32.model.safetensors');
  const io = load('resnet32.io.safetensors').entries;
  // dequantise the U8-coded conv weights: w = (code - 128) * 2^e (exact in float32)
  const deq = new Map<string, StEntry>();
  for (const [n, e] of entries) {
    if (e.dtype !== 'U8') {
      deq.set(n, e);
      continue;
    }
    const ex = Number(metadata[`qexp.${n}`]);
    if (!Number.isInteger(ex)) throw new Error(`no qexp for ${n}`);
    const w = new Float32Array(e.data.length);
    for (let i = 0; i < w.length; i++) w[i] = (e.data[i] - 128) * 2 ** ex;
    deq.set(n, { dtype: 'F32', shape: e.shape, data: new Uint8Array(w.buffer) });
  }
  const net = new ResNet32(10, { seed: 0, inChannels: 3 });
  loadModelEntries(net, deq, 'resnet32.model.safetensors');
  const conv = net.stateDict().get('stage3.4.conv2.weight')!;
  const ref = entryToTensor(deq.get('stage3.4.conv2.weight')!, 'w');
  tt.same(Array.from(conv.toFloat32().slice(0, 8)), Array.from(ref.toFloat32().slice(0, 8)), 'weights loaded');
  ref.dispose();

  const xe = io.get('input')!;
  const x = Tensor.fromArray(f32(xe, 'input'), xe.shape);
  // like torch.no_grad(): forward only
  net.eval();
  checkClose(tt, 'logits (eval mode, running stats)', noGrad(() => net.forward(x)), io.get('logits_eval'));
  net.train();
  checkClose(tt, 'logits (train mode, batch stats)', noGrad(() => net.forward(x)), io.get('logits_train'));
  checkBuffersAndCounters(tt, net, io);
  net.zeroGrad();
  net.dispose();
});
