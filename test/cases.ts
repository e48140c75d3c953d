// The table of op test cases: for each op, its shapes, which of them the finite-difference
// gradient check runs on (grad: true), and the tolerance of float32 sums against the float64
// reference. The SIMD-level op tests (test/ops-<op>.test.ts), the large-shape backward test and
// the gradient checks all read their shapes here; a new op adds its entry here first.
// The ResNet-32 conv shapes the benchmarks time come from the network itself (src/nn/resnet.ts).

/** Tolerance of a float32 result summed over k products, against the float64 reference. */
export function sumTol(k: number): { atol: number; rtol: number } {
  return { atol: 2e-6 * k + 1e-5, rtol: 1e-4 };
}

export interface Conv2dCase {
  x: number[];
  w: number[];
  stride: number;
  pad: number;
  bias: boolean;
  /** run the finite-difference gradient check on this case */
  grad: boolean;
}

export const conv2dCases: Conv2dCase[] = [
  // small and odd shapes: forward and gradient checks
  { x: [2, 3, 5, 4], w: [4, 3, 1, 1], stride: 1, pad: 0, bias: true, grad: true },
  { x: [1, 2, 5, 5], w: [3, 2, 1, 1], stride: 2, pad: 0, bias: false, grad: true },
  { x: [2, 3, 5, 6], w: [4, 3, 3, 3], stride: 1, pad: 1, bias: true, grad: true },
  { x: [1, 3, 7, 5], w: [2, 3, 3, 3], stride: 2, pad: 1, bias: false, grad: true },
  { x: [2, 2, 6, 7], w: [3, 2, 3, 3], stride: 2, pad: 0, bias: true, grad: true },
  { x: [1, 2, 9, 8], w: [3, 2, 7, 7], stride: 2, pad: 3, bias: true, grad: true },
  { x: [1, 1, 4, 4], w: [1, 1, 3, 3], stride: 1, pad: 0, bias: true, grad: true }, // c = o = 1
  { x: [3, 4, 1, 1], w: [5, 4, 1, 1], stride: 1, pad: 0, bias: true, grad: true }, // 1x1 spatial
  { x: [2, 3, 1, 1], w: [2, 3, 3, 3], stride: 1, pad: 1, bias: false, grad: true }, // 3x3 over a 1x1 plane
  { x: [1, 2, 3, 3], w: [2, 2, 3, 3], stride: 1, pad: 0, bias: true, grad: true }, // 1x1 output
  { x: [2, 1, 1, 7], w: [2, 1, 1, 3], stride: 1, pad: 0, bias: false, grad: true }, // h = 1
  // larger shapes: forward only
  { x: [2, 16, 32, 32], w: [32, 16, 3, 3], stride: 1, pad: 1, bias: true, grad: false },
  { x: [2, 16, 32, 32], w: [16, 16, 3, 3], stride: 2, pad: 1, bias: false, grad: false },
  { x: [2, 3, 32, 32], w: [16, 3, 7, 7], stride: 2, pad: 3, bias: false, grad: false }, // ResNet-18 stem
  { x: [3, 5, 17, 19], w: [7, 5, 3, 3], stride: 2, pad: 1, bias: true, grad: false },
  { x: [2, 33, 9, 11], w: [17, 33, 1, 1], stride: 1, pad: 0, bias: true, grad: false },
];

/** Shapes too large for finite differences: analytic backward against the float64 reference. */
export const conv2dBackwardCases = [
  { x: [2, 16, 32, 32], w: [32, 16, 3, 3], stride: 1, pad: 1 },
  { x: [2, 16, 16, 16], w: [32, 16, 3, 3], stride: 2, pad: 1 },
  { x: [2, 3, 32, 32], w: [16, 3, 7, 7], stride: 2, pad: 3 },
  { x: [3, 24, 9, 11], w: [40, 24, 1, 1], stride: 1, pad: 0 },
  { x: [1, 64, 8, 8], w: [64, 64, 3, 3], stride: 1, pad: 1 },
];

export interface LinearCase {
  n: number;
  inF: number;
  outF: number;
  bias: boolean;
  grad: boolean;
}

export const linearCases: LinearCase[] = [
  { n: 5, inF: 7, outF: 3, bias: true, grad: true },
  { n: 1, inF: 1, outF: 1, bias: true, grad: true },
  { n: 1, inF: 9, outF: 1, bias: false, grad: true },
  { n: 4, inF: 17, outF: 33, bias: true, grad: true },
  { n: 3, inF: 33, outF: 2, bias: false, grad: true },
  { n: 64, inF: 300, outF: 70, bias: true, grad: false },
  { n: 127, inF: 512, outF: 100, bias: true, grad: false },
  { n: 7, inF: 3, outF: 257, bias: false, grad: false },
];

/** [n, in, out]: analytic backward against the float64 reference. */
export const linearBackwardCases: [number, number, number][] = [[64, 300, 70], [127, 512, 100], [7, 3, 257], [256, 64, 10]];

export interface ShortcutCase {
  x: number[];
  stride: number;
  pb: number;
  pa: number;
  grad: boolean;
}

export const shortcutCases: ShortcutCase[] = [
  { x: [2, 3, 5, 5], stride: 2, pb: 1, pa: 2, grad: true },
  { x: [1, 4, 4, 4], stride: 1, pb: 0, pa: 0, grad: true },
  { x: [2, 2, 7, 6], stride: 2, pb: 2, pa: 2, grad: true },
  { x: [3, 1, 1, 1], stride: 2, pb: 1, pa: 0, grad: true },
  { x: [1, 2, 7, 8], stride: 3, pb: 0, pa: 3, grad: true },
  { x: [2, 16, 32, 32], stride: 2, pb: 8, pa: 8, grad: false }, // CIFAR ResNet stage change
];

/** hflip: forward shapes (exact copies), and the smaller ones the gradient check runs on. */
export const hflipCases = {
  forward: [[3, 2, 4, 5], [1, 1, 1, 1], [2, 3, 1, 17], [4, 1, 3, 16], [2, 3, 32, 32], [5, 2, 2, 33]],
  grad: [[3, 2, 2, 3], [1, 1, 1, 1], [2, 1, 1, 5]],
};
