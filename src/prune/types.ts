// Shared types of the prune layer: per-step snapshots (BatchNorm and heads), step masks, and
// the teacher interface through which methods get the outputs of past models.
// A step mask is a u8 tensor shaped like its conv weight: 0 = free (trainable now, or pruned
// to zero), k >= 1 = owned by step k (frozen since step k). Teacher k uses exactly the weights
// with 1 <= m <= k, the BatchNorm of step k and the classifier rows of step k.
import type { Tensor } from '../engine';

export interface BnSnapshot {
  weight: Float32Array;
  bias: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
  eps: number;
}

export interface HeadSnapshot {
  /** [classes, inFeatures] row-major */
  weight: Float32Array;
  bias: Float32Array;
  classes: number;
  inFeatures: number;
}

/** What is kept of step k after its pruning and fine-tuning. */
export interface StepSnapshot {
  /** 1-based step id; equals the mask value of the weights this step owns */
  step: number;
  /** C_k: classes seen after step k (the heads' row count) */
  classesSeen: number;
  /** every BatchNorm layer, keyed by its module's dotted name ('bn1', 'stage1.0.bn2', ...) */
  bn: Record<string, BnSnapshot>;
  /** main classifier rows [C_k, 64] */
  fc: HeadSnapshot;
  /** auxiliary classifier rows [C_k, 32] */
  aux: HeadSnapshot;
}

/** Teacher `step`'s logits for the columns [start, end) of its heads (end <= its classesSeen). */
export interface TeacherRequest {
  step: number;
  start: number;
  end: number;
}

export interface TeacherOutput {
  /** main logits [n, end - start] */
  main: Tensor;
  /** auxiliary logits [n, end - start] */
  aux: Tensor;
}

/**
 * A source of past models' outputs: either a bank rebuilt from step masks (pruning) or full
 * snapshots. forward() never records gradients; outputs are new tensors owned by the caller.
 */
export interface TeacherSource {
  /** the steps this source can serve */
  readonly steps: number[];
  forward(x: Tensor, requests: TeacherRequest[]): TeacherOutput[];
  dispose(): void;
}
