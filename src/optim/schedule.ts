// Learning-rate schedules, stepped once per epoch.
import { SGD } from './sgd';

/** lr = base * gamma^(number of milestones <= epoch), like torch.optim.lr_scheduler.MultiStepLR. */
export class MultiStepLR {
  readonly baseLr: number;
  constructor(private readonly opt: SGD, readonly milestones: number[], readonly gamma: number, public epoch = 0) {
    if (!(gamma > 0)) throw new Error(`MultiStepLR: gamma must be > 0, got ${gamma}`);
    this.baseLr = opt.lr;
    this.apply();
  }
  lrAt(epoch: number): number {
    return this.baseLr * Math.pow(this.gamma, this.milestones.filter((m) => m <= epoch).length);
  }
  /** Call at the end of each epoch. */
  step(): void {
    this.epoch++;
    this.apply();
  }
  private apply(): void {
    this.opt.lr = this.lrAt(this.epoch);
  }
}
