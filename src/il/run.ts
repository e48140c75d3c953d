// What the modules of one incremental run share: its events, its position (what a checkpoint
// resumes from), its options, and the deterministic rng streams. The run itself is OrderRun
// (trainer.ts); its parts: teachers.ts (teacher outputs and their per-step cache), targets.ts
// (targets and loss of a batch), batches.ts (the epoch and batch loop), recalibrate.ts (BatchNorm
// statistics), evaluate.ts (accuracy and memory accounting).
import type { ImageDataset } from '../data';
import type { AuxResNet } from '../nn';
import type { Device } from '../engine';
import type { StepMasks } from '../prune/masks';
import type { StepSnapshot, TeacherSource } from '../prune/types';
import type { MethodSpec } from './methods';
import type { IlConfig } from './config';
import type { ClassOrder } from './protocol';
import type { StepResult } from './results';
import type { OrderRun } from './trainer';

export type Phase = 'train' | 'finetune';

export type IlEvent =
  | { kind: 'step-start'; method: string; order: number; step: number; steps: number; classes: number[]; images: number }
  | { kind: 'teachers'; method: string; order: number; step: number; done: number; total: number; elapsed: number }
  | { kind: 'batch'; method: string; order: number; step: number; steps: number; phase: Phase; epoch: number; epochs: number; batch: number; batches: number; loss: number; elapsed: number }
  | { kind: 'epoch'; method: string; order: number; step: number; phase: Phase; epoch: number; epochs: number; loss: number; lr: number; seconds: number }
  | { kind: 'step'; method: string; order: number; result: StepResult }
  | { kind: 'checkpoint'; method: string; order: number; step: number; phase: Phase | 'step'; epoch: number; dir: string }
  | { kind: 'resumed'; method: string; order: number; step: number; phase: Phase; epoch: number };

/** Where a run stands: steps fully done, and inside the next step the phase and finished epochs. */
export interface RunPosition {
  stepsDone: number;
  phase: Phase;
  epochsDone: number;
}

/** Derives an rng stream id from labelled integers (deterministic, resumable without stored state). */
export function streamOf(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h ^= p & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= (p >>> 16) & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
/** rng stream purposes (the first part of streamOf) */
export const PURPOSE = { init: 1, grow: 2, shuffle: 3, flip: 4, crop: 5 };

export interface OrderRunOptions {
  dataset: ImageDataset;
  method: MethodSpec;
  order: ClassOrder;
  orderIndex: number;
  cfg: IlConfig;
  /** where the model, optimizer state, masks, teachers and batches live (default cpu) */
  device?: Device;
  emit?: (e: IlEvent) => void;
  /** called at the end of every epoch and step; the checkpoint layer persists the run there */
  onCheckpoint?: (run: OrderRun, at: { phase: Phase | 'step'; epoch: number }) => void;
  signal?: AbortSignal;
  /** teacher source factory for pruned methods (default: the fused teacher bank) */
  bankFactory?: (model: AuxResNet, masks: StepMasks, snapshots: StepSnapshot[], steps: number[]) => TeacherSource;
}

/** Lets the event loop run (progress output, abort signals) between batches. */
export function yieldToLoop(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
