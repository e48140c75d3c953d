// Checkpoints: safetensors round trip with PyTorch names, optimizer state, atomic writes, and
// clear errors for truncated or corrupt files (the process survives).
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor, tidy, ops, Rng, noGrad } from '../src/engine';
import { ResNet32 } from '../src/nn';
import { SGD } from '../src/optim';
import { saveCheckpoint, loadCheckpoint, readSafetensors, encodeSafetensors, decodeSafetensors } from '../src/io';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-ckpt-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function logitsOf(model: ResNet32, x: Tensor): Float32Array {
  model.eval();
  return noGrad(() => tidy(() => model.forward(x).toFloat32()));
}

t.test('model + optimizer round trip', async (t) => {
  const rng = new Rng(2);
  const a = new ResNet32(5, { seed: 1 });
  const opt = new SGD(a.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
  const x = Tensor.fromArray(rng.normal(4 * 3 * 32 * 32), [4, 3, 32, 32]);
  const labels = Tensor.fromArray(new Int32Array([0, 1, 2, 3]), [4]);
  for (let i = 0; i < 2; i++)
    tidy(() => {
      a.train();
      const l = ops.softmaxCrossEntropy(a.forward(x), labels);
      opt.zeroGrad();
      l.backward();
      opt.step();
    });
  const dir = path.join(tmp, 'ck1');
  const manifest = saveCheckpoint(dir, a, { optimizer: opt, meta: { note: 'test' } });
  t.ok(manifest.model.tensors['stage1.0.bn1.running_mean'], 'PyTorch-style names');
  t.ok(manifest.model.tensors['conv1.weight'] && manifest.model.tensors['fc.bias']);
  t.same(manifest.model.tensors['stage1.0.bn1.num_batches_tracked'], []);
  const st = readSafetensors(path.join(dir, 'model.safetensors'));
  t.equal(st.entries.get('stage2.0.conv1.weight')!.dtype, 'F32');
  t.equal(st.entries.get('bn1.num_batches_tracked')!.dtype, 'I64');

  const b = new ResNet32(5, { seed: 99 });
  const optB = new SGD(b.parameters(), { lr: 1, momentum: 0.5 });
  loadCheckpoint(dir, b, optB);
  t.same(Array.from(logitsOf(b, x)), Array.from(logitsOf(a, x)), 'identical logits after load');
  t.equal(optB.lr, 0.05);
  t.equal(optB.momentum, 0.9);
  t.equal(b.bn1.numBatchesTracked, 2);
  const ma = opt.momentumBuffers(), mb = optB.momentumBuffers();
  t.equal(mb.size, ma.size);
  t.same(Array.from(mb.get(0)!.toFloat32()), Array.from(ma.get(0)!.toFloat32()), 'momentum restored');
  for (const m of [a, b]) m.dispose();
  opt.dispose();
  optB.dispose();
  x.dispose();
  labels.dispose();
});

t.test('truncated and corrupt files get clear errors', async (t) => {
  const m = new ResNet32(3, { seed: 1 });
  const dir = path.join(tmp, 'ck2');
  saveCheckpoint(dir, m);
  const file = path.join(dir, 'model.safetensors');
  const full = fs.readFileSync(file);
  fs.writeFileSync(file, full.subarray(0, full.length - 100));
  t.throws(() => loadCheckpoint(dir, m), /truncated/);
  fs.writeFileSync(file, full.subarray(0, 5));
  t.throws(() => loadCheckpoint(dir, m), /truncated/);
  const bad = Buffer.from(full);
  bad.write('{{{{', 8);
  fs.writeFileSync(file, bad);
  t.throws(() => loadCheckpoint(dir, m), /corrupt/);
  fs.writeFileSync(file, full);
  const other = new ResNet32(7, { seed: 1 });
  t.throws(() => loadCheckpoint(dir, other), /fc.weight.*shape|shape/);
  fs.writeFileSync(path.join(dir, 'manifest.json'), '{"format": "other"}');
  t.throws(() => loadCheckpoint(dir, m), /not an m2kd checkpoint/);
  t.throws(() => loadCheckpoint(path.join(tmp, 'missing'), m), /manifest/);
  m.dispose();
  other.dispose();
});

t.test('writes are atomic: a failed write leaves the old file and no temp files', async (t) => {
  const dir = path.join(tmp, 'ck3');
  const m = new ResNet32(2, { seed: 1 });
  saveCheckpoint(dir, m);
  const before = fs.readFileSync(path.join(dir, 'model.safetensors'));
  fs.chmodSync(dir, 0o500);
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) t.throws(() => saveCheckpoint(dir, m), /cannot write/);
  fs.chmodSync(dir, 0o700);
  t.same(fs.readFileSync(path.join(dir, 'model.safetensors')), before);
  t.same(fs.readdirSync(dir).filter((f) => f.includes('.tmp-')), []);
  // an unwritable destination (a file where a folder should be)
  const blocker = path.join(tmp, 'blocker');
  fs.writeFileSync(blocker, 'x');
  t.throws(() => saveCheckpoint(path.join(blocker, 'sub'), m), /cannot create checkpoint folder/);
  m.dispose();
});

t.test('safetensors encode/decode', async (t) => {
  const data = new Float32Array([1, 2, 3, 4, 5, 6]);
  const buf = encodeSafetensors(new Map([['a.b', { dtype: 'F32' as const, shape: [2, 3], data: new Uint8Array(data.buffer) }]]), { k: 'v' });
  t.equal(Number(new DataView(buf.buffer).getBigUint64(0, true)) % 8, 0, 'header padded to 8 bytes');
  const d = decodeSafetensors(buf);
  t.same(d.metadata, { k: 'v' });
  t.same(Array.from(new Float32Array(d.entries.get('a.b')!.data.buffer)), Array.from(data));
});
