// The result types of an incremental-learning run: what the il layer measures after every
// step, per class order and per method. results.json (written by the report layer) is exactly
// a RunResults serialised with JSON.stringify; docs/results-schema.md documents every field.
// Accuracies are in percent (0..100); bytes are bytes; seconds are wall-clock seconds.

export interface MemoryBreakdown {
  /** step masks, bit-packed, as stored */
  masks: number;
  /** per-step BatchNorm parameters and running statistics */
  bn: number;
  /** per-step classifier rows, main and auxiliary heads */
  heads: number;
  /** full model snapshots (no-pruning variants, LwF-MC's previous model) */
  snapshots: number;
  /** exemplar images as stored (u8 pixels) plus their labels */
  exemplars: number;
  /** sum of the above: what the method keeps beyond the current model */
  total: number;
}

export interface StepResult {
  /** 1-based step index */
  step: number;
  /** the classes (dataset label ids) added at this step, in order */
  classes: number[];
  /** C_t: number of classes seen after this step */
  classes_seen: number;
  /** top-1 / top-5 accuracy (%) on the test images of all seen classes */
  top1: number;
  top5: number;
  /** top-1 accuracy (%) on the test images of each group G_1..G_t (index = group - 1) */
  per_group: number[];
  /** forgetting per group G_1..G_{t-1}: best earlier accuracy of the group minus its current one (points); [] at step 1 */
  forgetting: number[];
  /** mean of forgetting[] (0 at step 1) */
  mean_forgetting: number;
  /** confusion[i][j]: test images of seen class i (in seen order) predicted as seen class j */
  confusion: number[][];
  /** bytes kept beyond the current model after this step */
  memory: MemoryBreakdown;
  /** per layer (conv weight name): fraction of weights owned by each step 1..t and still free, after this step's pruning; absent without pruning */
  mask_occupancy?: Record<string, { owned: number[]; free: number }>;
  /** wall-clock seconds of this step: training, pruning+fine-tuning, teacher-output caching, evaluation */
  seconds: { train: number; finetune: number; teachers: number; eval: number; total: number };
  /** mean training loss of the last epoch */
  final_loss: number;
}

export interface OrderResult {
  /** the class order (dataset label ids), grouped into steps of classes_per_step */
  order: number[];
  /** the seed this order came from, or null for a named/explicit order */
  order_seed: number | null;
  /** a name for named orders ('A', 'B'), else null */
  order_name: string | null;
  steps: StepResult[];
  /** mean of steps[].top1 (the paper's average incremental accuracy) */
  avg_incremental_top1: number;
  avg_incremental_top5: number;
  seconds: number;
}

export interface MeanStd {
  mean: number;
  std: number;
  /** number of values (orders) */
  n: number;
}

export interface MethodResult {
  /** the method's name as given on the command line (e.g. 'm2kd', 'lwf-mc') */
  method: string;
  /** human-readable name (e.g. 'M²KD', 'LwF-MC') */
  label: string;
  orders: OrderResult[];
  /** over orders: mean and sample std of each order's avg_incremental_top1 */
  avg_incremental_top1: MeanStd;
  avg_incremental_top5: MeanStd;
  /** per step index: mean and std of top1 over orders */
  top1_per_step: MeanStd[];
  /** the hyper-parameters this method ran with */
  config: Record<string, unknown>;
}

export interface RunResults {
  format: 'm2kd-results';
  version: 1;
  created: string;
  /** the command line that produced this run, for reproduction */
  command: string;
  dataset: { name: string; classes: number; train_images: number; test_images: number; image_shape: number[]; class_names: string[] };
  /** headline: the metric tables and plots lead with (absent: top1; the ImageNet preset: top5, the paper's metric there) */
  protocol: { classes_per_step: number; steps: number; orders: number; headline?: 'top1' | 'top5' };
  /** engine facts: version, SIMD level, threads, device */
  runtime: Record<string, unknown>;
  methods: Record<string, MethodResult>;
  /** total wall-clock seconds */
  seconds: number;
}
