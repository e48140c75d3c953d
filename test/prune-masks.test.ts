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
