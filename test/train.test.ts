// End-to-end training: a small ResNet learns a separable synthetic problem, native live bytes
// stay flat over 200 training steps, and runs are reproducible from a seed.
import t from 'tap';
import { Tensor, Rng, tidy, ops, memory, noGrad } from '../src/engine';
import { ResNet32 } from '../src/nn';
import { SGD } from '../src/optim';

/** Class k: a bright 4x4 square in quadrant k of an 8x8 single-channel image, plus noise. */
function synthetic(n: number, rng: Rng): { x: Float32Array; y: Int32Array } {
  const x = rng.normal(n * 64, 0, 0.3);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = rng.int(4);
    y[i] = k;
    const oy = (k >> 1) * 4, ox = (k & 1) * 4;
    for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) x[i * 64 + (oy + a) * 8 + ox + b] += 1.5;
  }
  return { x, y };
}

function trainSteps(model: ResNet32, opt: SGD, data: { x: Float32Array; y: Int32Array }, steps: number, batch: number, onStep?: (i: number) => void): number[] {
  const losses: number[] = [];
  const n = data.y.length;
  for (let s = 0; s < steps; s++) {
    const off = (s * batch) % (n - batch + 1);
    const loss = tidy(() => {
      const x = Tensor.fromArray(data.x.subarray(off * 64, (off + batch) * 64), [batch, 1, 8, 8]);
      const y = Tensor.fromArray(data.y.subarray(off, off + batch), [batch]);
      const l = ops.softmaxCrossEntropy(model.forward(x), y);
      opt.zeroGrad();
      l.backward();
      opt.step();
      return l.item();
    });
    losses.push(loss);
    onStep?.(s);
  }
  return losses;
}

t.test('a small ResNet learns a separable synthetic problem to > 95%', async (t) => {
  const rng = new Rng(11);
  const train = synthetic(512, rng);
  const test = synthetic(256, rng);
  const model = new ResNet32(4, { inChannels: 1, seed: 3 });
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
  model.train();
  trainSteps(model, opt, train, 60, 32);
  model.eval();
  const logits = noGrad(() => tidy(() => model.forward(Tensor.fromArray(test.x, [256, 1, 8, 8])).toFloat32()));
  let correct = 0;
  for (let i = 0; i < 256; i++) {
    let best = 0;
    for (let j = 1; j < 4; j++) if (logits[i * 4 + j] > logits[i * 4 + best]) best = j;
    if (best === test.y[i]) correct++;
  }
  t.ok(correct / 256 > 0.95, `test accuracy ${(100 * correct / 256).toFixed(1)}%`);
  opt.zeroGrad();
  opt.dispose();
  model.dispose();
});

t.test('live bytes stay flat over 200 training steps', async (t) => {
  const rng = new Rng(12);
  const data = synthetic(256, rng);
  const model = new ResNet32(4, { inChannels: 1, seed: 4 });
  const opt = new SGD(model.parameters(), { lr: 0.02, momentum: 0.9 });
  model.train();
  trainSteps(model, opt, data, 5, 16); // momentum buffers and grads exist from here on
  const base = memory().liveBytes;
  const samples: number[] = [];
  trainSteps(model, opt, data, 200, 16, (i) => {
    if (i % 20 === 19) samples.push(memory().liveBytes);
  });
  t.ok(samples.every((s) => s === base), `live bytes ${base} -> ${samples.join(', ')}`);
  const osBefore = memory().osAllocations;
  trainSteps(model, opt, data, 20, 16);
  t.equal(memory().osAllocations, osBefore, 'no new OS allocations in the steady state (the pool serves every buffer)');
  opt.zeroGrad();
  opt.dispose();
  model.dispose();
});

t.test('training is reproducible from a seed', async (t) => {
  const run = (): number[] => {
    const data = synthetic(64, new Rng(5));
    const model = new ResNet32(4, { inChannels: 1, seed: 8 });
    const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    model.train();
    const l = trainSteps(model, opt, data, 5, 16);
    opt.zeroGrad();
    opt.dispose();
    model.dispose();
    return l;
  };
  t.same(run(), run());
});
