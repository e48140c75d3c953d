// Step masks: magnitude pruning per layer, freeze masks, occupancy, bit-packing.
import t from 'tap';
import { Rng } from '../src/engine';
import { ResNet32Aux } from '../src/nn';
import { StepMasks, packBits, unpackBits, bitsForSteps, prunableWeights } from '../src/prune';

t.test('bitsForSteps uses no more bits than the step count needs', async (t) => {
  t.equal(bitsForSteps(1), 1);
  t.equal(bitsForSteps(2), 2);
  t.equal(bitsForSteps(3), 2);
  t.equal(bitsForSteps(4), 3);
  t.equal(bitsForSteps(5), 3);
  t.equal(bitsForSteps(10), 4);
  t.equal(bitsForSteps(20), 5);
  t.throws(() => bitsForSteps(0), /1\.\.255/);
  t.throws(() => bitsForSteps(256), /1\.\.255/);
});

t.test('packBits / unpackBits round trip for every width', async (t) => {
  const rng = new Rng(3);
  for (let bits = 1; bits <= 8; bits++) {
    for (const n of [1, 7, 8, 9, 1000]) {
      const v = new Uint8Array(n);
      for (let i = 0; i < n; i++) v[i] = rng.int(1 << bits);
      const p = packBits(v, bits);
      t.equal(p.length, Math.ceil((n * bits) / 8), `bits ${bits} n ${n}: packed size`);
      t.same(Array.from(unpackBits(p, bits, n)), Array.from(v), `bits ${bits} n ${n}: round trip`);
    }
  }
  t.throws(() => packBits(new Uint8Array([4]), 2), /does not fit in 2 bits/);
  t.throws(() => unpackBits(new Uint8Array(1), 3, 5), /cannot hold/);
});

t.test('prune: lowest ratio of the free weights zeroed, the rest owned by the step', async (t) => {
  const model = new ResNet32Aux(2, { inChannels: 1, seed: 5 });
  const masks = new StepMasks(model);
  const convs = prunableWeights(model);
  t.equal(masks.names().length, convs.length, 'one mask per conv weight');
  t.equal(convs.length, 31, 'ResNet-32 has 31 conv layers');
  const before = new Map(convs.map(([n, w]) => [n, w.toFloat32()]));
  const stats = masks.prune(model, 1, 0.75);
  for (const s of stats) {
    t.equal(s.pruned, Math.round(0.75 * s.free), `${s.name}: round(0.75 * free) pruned`);
    const w = new Map(prunableWeights(model)).get(s.name)!.toFloat32();
    const h = masks.hostMask(s.name);
    const w0 = before.get(s.name)!;
    let minKept = Infinity, maxPruned = 0, kept = 0;
    for (let i = 0; i < h.length; i++) {
      if (h[i] === 1) {
        kept++;
        minKept = Math.min(minKept, Math.abs(w0[i]));
        if (w[i] !== w0[i]) t.fail(`${s.name}: an owned weight changed`);
      } else {
        maxPruned = Math.max(maxPruned, Math.abs(w0[i]));
        if (w[i] !== 0) t.fail(`${s.name}: a pruned weight is not zero`);
      }
    }
    t.equal(kept, s.kept);
    t.ok(minKept >= maxPruned, `${s.name}: every kept weight is at least as large as every pruned one`);
  }
  // step 2 prunes only the weights still free
  for (const [, w] of prunableWeights(model)) {
    const v = w.toFloat32();
    for (let i = 0; i < v.length; i++) v[i] += 0.01 * ((i % 7) - 3);
    w.set(v);
  }
  const owned1 = new Map(masks.names().map((n) => [n, Uint8Array.from(masks.hostMask(n))]));
  const st2 = masks.prune(model, 2, 0.75);
  for (const s of st2) {
    const h = masks.hostMask(s.name), h1 = owned1.get(s.name)!;
    for (let i = 0; i < h.length; i++) if (h1[i] === 1 && h[i] !== 1) t.fail(`${s.name}: step 1's weight lost its owner`);
    t.equal(s.free, h1.filter((m) => m === 0).length, `${s.name}: step 2 ranks only free weights`);
  }
  const occ = masks.occupancy(2);
  const o = occ['stage2.0.conv1.weight'];
  t.ok(Math.abs(o.owned[0] - 0.25) < 0.01 && Math.abs(o.owned[1] - 0.1875) < 0.01, `occupancy ${o.owned} ≈ 0.25, 0.1875`);
  t.ok(Math.abs(o.free + o.owned[0] + o.owned[1] - 1) < 1e-9);
  // finetune freeze: only step 2's weights train
  const fz = masks.finetuneFreezeMasks(2);
  for (const [n, m] of fz) {
    const f = m.toArray() as Uint8Array, h = masks.hostMask(n);
    for (let i = 0; i < f.length; i++) if ((f[i] === 0) !== (h[i] === 2)) t.fail(`${n}: freeze mask wrong at ${i}`);
    m.dispose();
  }
  t.equal(masks.packedBytes(5), masks.names().reduce((s, n) => s + Math.ceil((masks.hostMask(n).length * 3) / 8), 0), '5 steps → 3 bits per weight');
  // round trip through pack/load
  const other = new StepMasks(model);
  other.load(masks.pack(5));
  for (const n of masks.names()) t.same(Array.from(other.hostMask(n)), Array.from(masks.hostMask(n)));
  t.throws(() => masks.prune(model, 2, 0.75), /already has weights owned by step 2/);
  t.throws(() => masks.prune(model, 3, 1), /ratio must be in \[0, 1\)/);
  other.dispose();
  masks.dispose();
  model.dispose();
});

// --prune-block B: blocks of B output channels at one (input channel, tap) position are pruned
// and owned together, ranked by their L2 norm; B = 1 is the unstructured magnitude pruning.
t.test('pruneLayer: block pruning by block norm, B = 1 equals per-weight magnitude pruning', async (t) => {
  const { pruneLayer } = await import('../src/prune');
  const rng = new Rng(21);
  const shape = [10, 3, 3, 3], per = 27, n = 270; // 10 channels: the last block of 4 or 8 is narrower
  for (const B of [1, 4, 8, 16]) {
    const w0 = Float32Array.from(rng.normal(n));
    const w = Float32Array.from(w0), h = new Uint8Array(n);
    const r1 = pruneLayer(w, h, shape, 1, 0.75, B);
    const r2 = pruneLayer(w, h, shape, 2, 0.5, B);
    t.equal(r1.free, n, `B=${B}: everything free before step 1`);
    // blocks are uniform in the mask, pruned blocks are zero, owned ones keep their values
    let uniform = true;
    for (let o0 = 0; o0 < 10; o0 += B)
      for (let q = 0; q < per; q++)
        for (let o = o0; o < Math.min(10, o0 + B); o++) if (h[o * per + q] !== h[o0 * per + q]) uniform = false;
    t.ok(uniform, `B=${B}: one step id per block`);
    let bad = 0;
    for (let i = 0; i < n; i++) if ((h[i] !== 1 && w[i] !== 0) || (h[i] === 1 && w[i] !== w0[i])) bad++;
    t.equal(bad, 0, `B=${B}: pruned weights zero, step-1 weights unchanged`);
    // step 1 owns the blocks of largest norm: every owned block's norm >= every other block's
    const norm = (o0: number, q: number) => {
      let s = 0;
      for (let o = o0; o < Math.min(10, o0 + B); o++) s += w0[o * per + q] ** 2;
      return s;
    };
    let minOwned = Infinity, maxOther = -Infinity, units = 0;
    for (let o0 = 0; o0 < 10; o0 += B)
      for (let q = 0; q < per; q++) {
        units++;
        const v = norm(o0, q);
        if (h[o0 * per + q] === 1) minOwned = Math.min(minOwned, v);
        else maxOther = Math.max(maxOther, v);
      }
    t.ok(minOwned >= maxOther, `B=${B}: step 1 owns the largest blocks`);
    const owned1 = new Set<number>();
    for (let o0 = 0; o0 < 10; o0 += B) for (let q = 0; q < per; q++) if (h[o0 * per + q] === 1) owned1.add(o0 * per + q);
    t.equal(owned1.size, units - Math.round(0.75 * units), `B=${B}: round((1 - ratio) x units) blocks owned by step 1`);
    t.ok(r2.free > 0 && r2.pruned > 0 && r2.free <= n - r1.free + r1.pruned, `B=${B}: step 2 prunes among the free blocks`);
    if (B === 1) {
      // per-weight magnitude ranking (the paper), ties by index
      const order = Array.from(w0.keys()).sort((a, b) => Math.abs(w0[a]) - Math.abs(w0[b]) || a - b);
      const want = new Uint8Array(n);
      order.forEach((i, j) => (want[i] = j < Math.round(0.75 * n) ? 0 : 1));
      const h1 = h.map((v) => (v === 1 ? 1 : 0));
      t.same(Array.from(h1), Array.from(want), 'B=1: unstructured magnitude pruning');
    }
  }
  t.throws(() => new StepMasks(new ResNet32Aux(2)).prune(new ResNet32Aux(2), 1, 0.5, 3), /block must be one of 1, 4, 8, 16/);
});
