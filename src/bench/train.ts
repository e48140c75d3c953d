// `m2kd bench train`: ResNet-32 training and eval throughput at batch 128, and GFLOP/s of
// every ResNet-32 conv shape (forward, backward-data, backward-weight), on the thread count
// in use. Synthetic inputs from a seeded RNG; medians of repeated steps.
// Device: cpu (default) or cuda (everything built on the device with withDevice; every timed
// call ends with a device synchronize, so times are wall-clock of finished work).
import { Tensor, Rng, tidy, noGrad, runtimeInfo, memory, withDevice, synchronize, cudaInfo, ops } from '../engine';
import type { Device } from '../engine';
import { ResNet32 } from '../nn';
import type { ConvGeometry } from '../nn';
import { SGD } from '../optim';
import { softmaxTrainStep } from '../train';
import { median, timeRuns } from './stats';

/** A conv shape the benchmark times (the network's own description: ResNet32.convShapes). */
export type ConvShape = ConvGeometry;

/** The distinct conv shapes of ResNet-32 at a batch size (3-channel input). */
export function resnet32ConvShapes(batch: number): ConvShape[] {
  return ResNet32.convShapes(batch);
}

export interface ConvResult {
  shape: string;
  forward_gflops: number;
  backward_data_gflops: number;
  backward_weight_gflops: number;
  forward_ms: number;
  backward_data_ms: number;
  backward_weight_ms: number;
}

export interface TrainBenchResult {
  device: Device;
  batch: number;
  steps: number;
  threads: number;
  isa: string;
  resnet32_train_img_s: number;
  resnet32_eval_img_s: number;
  train_step_ms: number;
  eval_step_ms: number;
  peak_live_mib: number;
  conv_gflops: ConvResult[];
}

export function benchConv(s: ConvShape, reps: number, device: Device = 'cpu'): ConvResult {
  const rng = new Rng(3);
  const oh = Math.floor((s.h + 2 * s.pad - s.k) / s.stride) + 1;
  const ow = Math.floor((s.w + 2 * s.pad - s.k) / s.stride) + 1;
  const sync = device === 'cpu' ? () => undefined : () => synchronize(device);
  return tidy(() => withDevice(device, () => {
    const x = Tensor.fromArray(rng.normal(s.n * s.c * s.h * s.w), [s.n, s.c, s.h, s.w]);
    const w = Tensor.fromArray(rng.normal(s.o * s.c * s.k * s.k, 0, 0.1), [s.o, s.c, s.k, s.k]);
    const y = Tensor.empty([s.n, s.o, oh, ow]);
    const dy = Tensor.fromArray(rng.normal(y.size), y.shape);
    const dx = Tensor.zeros(x.shape);
    const dw = Tensor.zeros(w.shape);
    const geom = { stride: s.stride, padding: s.pad };
    const flops = 2 * s.n * s.o * oh * ow * s.c * s.k * s.k;
    sync();
    const f = median(timeRuns(() => { ops.conv2dKernels.forward(x, w, y, geom); sync(); }, reps));
    const bd = median(timeRuns(() => { ops.conv2dKernels.backwardData(dy, w, dx, geom); sync(); }, reps));
    const bw = median(timeRuns(() => { ops.conv2dKernels.backwardWeight(x, dy, dw, geom); sync(); }, reps));
    return {
      shape: s.name,
      forward_gflops: flops / f / 1e9,
      backward_data_gflops: flops / bd / 1e9,
      backward_weight_gflops: flops / bw / 1e9,
      forward_ms: f * 1e3,
      backward_data_ms: bd * 1e3,
      backward_weight_ms: bw * 1e3,
    };
  }));
}

/** A ready-to-time ResNet-32 training step and eval step on fixed synthetic data. */
export class ResNet32Workload {
  readonly model: ResNet32;
  readonly opt: SGD;
  private readonly x: Tensor;
  private readonly labels: Tensor;

  constructor(readonly batch: number, classes = 10, seed = 1, readonly device: Device = 'cpu') {
    const rng = new Rng(seed, 11);
    // model, optimizer state and data all live on `device`
    [this.model, this.opt, this.x, this.labels] = withDevice(device, () => {
      const model = new ResNet32(classes, { seed });
      const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
      const x = Tensor.fromArray(rng.normal(batch * 3 * 32 * 32), [batch, 3, 32, 32]);
      const l = new Int32Array(batch);
      for (let i = 0; i < batch; i++) l[i] = rng.int(classes);
      return [model, opt, x, Tensor.fromArray(l, [batch])] as const;
    });
  }

  trainStep(): number {
    this.model.train();
    // tensors the step creates (gradients, momentum on first use) go to the workload's device
    const loss = withDevice(this.device, () => softmaxTrainStep(this.model, this.opt, this.x, this.labels).loss);
    if (this.device !== 'cpu') synchronize(this.device);
    return loss;
  }

  evalStep(): void {
    this.model.eval();
    withDevice(this.device, () => noGrad(() => tidy(() => this.model.forward(this.x).toFloat32())));
  }

  dispose(): void {
    this.opt.zeroGrad();
    this.opt.dispose();
    this.model.dispose();
    this.x.dispose();
    this.labels.dispose();
  }
}

export function benchTrain(opts: { batch?: number; steps?: number; convReps?: number; device?: Device } = {}): TrainBenchResult {
  const batch = opts.batch ?? 128;
  const steps = opts.steps ?? 20;
  const device = opts.device ?? 'cpu';
  const info = runtimeInfo();
  const wl = new ResNet32Workload(batch, 10, 1, device);
  let trainTimes: number[], evalTimes: number[];
  try {
    trainTimes = timeRuns(() => wl.trainStep(), steps, 3);
    evalTimes = timeRuns(() => wl.evalStep(), steps, 2);
  } finally {
    wl.dispose();
  }
  const conv = resnet32ConvShapes(batch).map((s) => benchConv(s, opts.convReps ?? 20, device));
  const tr = median(trainTimes), ev = median(evalTimes);
  const mem = memory();
  const gpu = device === 'cuda' ? cudaInfo() : null;
  return {
    device,
    batch,
    steps,
    threads: info.threads,
    isa: gpu ? `${gpu.deviceName ?? 'cuda'} (sm ${gpu.computeCapability ?? '?'})` : info.isa,
    resnet32_train_img_s: batch / tr,
    resnet32_eval_img_s: batch / ev,
    train_step_ms: tr * 1e3,
    eval_step_ms: ev * 1e3,
    peak_live_mib: (device === 'cuda' ? mem.devicePeakLiveBytes ?? 0 : mem.peakLiveBytes) / 2 ** 20,
    conv_gflops: conv,
  };
}
