// An experiment: methods × class orders on one dataset, each (method, order) an OrderRun,
// with progress events, checkpoints per (method, order) under <out>/checkpoints, resume, and
// the aggregated RunResults (mean ± std over orders). The report layer writes results.json
// and the plots; this layer only measures.
import * as fs from 'fs';
import * as path from 'path';
import { EventEmitter } from 'events';
import { ImageDataset } from '../data';
import { runtimeInfo, checkDevice, Device } from '../engine';
import { MethodSpec } from './methods';
import { IlConfig, validateConfig } from './config';
import { ClassOrder, groupsOf } from './protocol';
import { OrderRun, IlEvent } from './trainer';
import { saveRunState, findRunState, loadRunState } from './checkpoint';
import { meanStd } from './metrics';
import type { RunResults, MethodResult, OrderResult } from './results';
import type { TeacherSource, StepSnapshot } from '../prune/types';
import type { StepMasks } from '../prune/masks';
import type { AuxResNet } from '../nn';

export interface ExperimentOptions {
  dataset: ImageDataset;
  methods: MethodSpec[];
  orders: ClassOrder[];
  /** one config for all methods, or per method name */
  config: IlConfig | ((method: MethodSpec) => IlConfig);
  /** output folder: checkpoints go to <out>/checkpoints (null: no checkpoints) */
  out?: string | null;
  /** continue from the checkpoints in <out> */
  resume?: boolean;
  /** write a checkpoint at the end of every epoch (default) or only after every step */
  checkpointEvery?: 'epoch' | 'step';
  command?: string;
  signal?: AbortSignal;
  /** the metric tables and plots lead with (results.json protocol.headline; default top1) */
  headline?: 'top1' | 'top5';
  bankFactory?: (model: AuxResNet, masks: StepMasks, snapshots: StepSnapshot[], steps: number[]) => TeacherSource;
  /** where every run trains (default cpu); checkpoints load on either device */
  device?: Device;
}

export interface ExperimentEvents {
  progress: [IlEvent];
  /** after every (method, order), with the results so far */
  partial: [RunResults];
}

function configOf(o: ExperimentOptions, m: MethodSpec): IlConfig {
  return typeof o.config === 'function' ? o.config(m) : o.config;
}

export class Experiment extends EventEmitter<ExperimentEvents> {
  constructor(readonly o: ExperimentOptions) {
    super();
    if (o.methods.length === 0) throw new Error('no methods to run');
    checkDevice(o.device ?? 'cpu');
    if (o.orders.length === 0) throw new Error('no class orders to run');
    for (const m of o.methods) {
      const cfg = configOf(o, m);
      validateConfig(cfg);
      for (const ord of o.orders) groupsOf(ord.order, cfg.classesPerStep);
      if (m.exemplars && cfg.memory < o.dataset.classes) throw new Error(`${m.name}: memory ${cfg.memory} holds fewer exemplars than the ${o.dataset.classes} classes`);
    }
    if (o.out) {
      try {
        fs.mkdirSync(o.out, { recursive: true });
        fs.accessSync(o.out, fs.constants.W_OK);
      } catch (e) {
        throw new Error(`output folder ${o.out} is not writable: ${(e as Error).message}`);
      }
    }
  }

  checkpointDir(m: MethodSpec, orderIndex: number): string | null {
    return this.o.out ? path.join(this.o.out, 'checkpoints', m.name, `order-${orderIndex}`) : null;
  }

  /** Runs everything (continuing from checkpoints when resume is set). */
  async run(): Promise<RunResults> {
    const t0 = Date.now();
    const ds = this.o.dataset;
    const cfg0 = configOf(this.o, this.o.methods[0]);
    const results: RunResults = {
      format: 'm2kd-results',
      version: 1,
      created: new Date().toISOString(),
      command: this.o.command ?? '',
      dataset: { name: ds.name, classes: ds.classes, train_images: ds.train.n, test_images: ds.test.n, image_shape: [ds.train.channels, ds.train.height, ds.train.width], class_names: ds.classNames },
      protocol: { classes_per_step: cfg0.classesPerStep, steps: ds.classes / cfg0.classesPerStep, orders: this.o.orders.length, ...(this.o.headline ? { headline: this.o.headline } : {}) },
      runtime: { ...runtimeInfo(), device: this.o.device ?? 'cpu' } as Record<string, unknown>,
      methods: {},
      seconds: 0,
    };
    for (const m of this.o.methods) {
      const cfg = configOf(this.o, m);
      const orders: OrderResult[] = [];
      for (let oi = 0; oi < this.o.orders.length; oi++) {
        const ord = this.o.orders[oi];
        const ckpt = this.checkpointDir(m, oi);
        const run = new OrderRun({
          dataset: ds,
          method: m,
          order: ord,
          orderIndex: oi,
          cfg,
          device: this.o.device,
          emit: (e) => this.emit('progress', e),
          signal: this.o.signal,
          bankFactory: this.o.bankFactory,
          onCheckpoint: ckpt
            ? (r, at) => {
                if (at.phase === 'step' || (this.o.checkpointEvery ?? 'epoch') === 'epoch') {
                  saveRunState(ckpt, r, cfg);
                  this.emit('progress', { kind: 'checkpoint', method: m.name, order: oi, step: r.position.stepsDone, phase: at.phase, epoch: at.epoch, dir: ckpt });
                }
              }
            : undefined,
        });
        const to = Date.now();
        try {
          if (this.o.resume && ckpt) {
            const found = findRunState(ckpt);
            if (found) loadRunState(found, run);
          }
          const steps = await run.run();
          const top1 = steps.map((s) => s.top1), top5 = steps.map((s) => s.top5);
          orders.push({
            order: ord.order,
            order_seed: ord.seed,
            order_name: ord.name,
            steps,
            avg_incremental_top1: meanStd(top1).mean,
            avg_incremental_top5: meanStd(top5).mean,
            seconds: steps.reduce((s, x) => s + x.seconds.total, 0) || (Date.now() - to) / 1000,
          });
        } finally {
          run.dispose();
        }
        results.methods[m.name] = this.methodResult(m, cfg, orders);
        results.seconds = (Date.now() - t0) / 1000;
        this.emit('partial', results);
      }
    }
    results.seconds = (Date.now() - t0) / 1000;
    return results;
  }

  private methodResult(m: MethodSpec, cfg: IlConfig, orders: OrderResult[]): MethodResult {
    const steps = Math.min(...orders.map((o) => o.steps.length));
    const perStep = [];
    for (let s = 0; s < steps; s++) perStep.push(meanStd(orders.map((o) => o.steps[s].top1)));
    return {
      method: m.name,
      label: m.label,
      orders,
      avg_incremental_top1: meanStd(orders.map((o) => o.avg_incremental_top1)),
      avg_incremental_top5: meanStd(orders.map((o) => o.avg_incremental_top5)),
      top1_per_step: perStep,
      config: { ...cfg, method: m } as unknown as Record<string, unknown>,
    };
  }
}
