// Module: a named tree of parameters (trainable leaf tensors), buffers (running statistics)
// and child modules, with PyTorch-style dotted names ("stage1.0.bn1.running_mean") so that a
// state dict maps one-to-one onto the equivalent PyTorch model. Modules own their tensors
// (created outside memory scopes) and release them in dispose().
import { Tensor, keep } from '../engine';

export abstract class Module {
  training = true;
  private readonly paramSlots = new Map<string, Tensor>();
  private readonly bufferSlots = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Registers (or replaces) a parameter: it gets requiresGrad and outlives memory scopes. */
  protected registerParameter(name: string, t: Tensor): Tensor {
    keep(t);
    t.requiresGrad = true;
    t.name = name;
    this.paramSlots.set(name, t);
    return t;
  }

  protected registerBuffer(name: string, t: Tensor): Tensor {
    keep(t);
    t.name = name;
    this.bufferSlots.set(name, t);
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Replaces a registered parameter's tensor (e.g. a classifier that grows), disposing the old one. */
  protected replaceParameter(name: string, t: Tensor): Tensor {
    const old = this.paramSlots.get(name);
    if (!old) throw new Error(`replaceParameter: no parameter '${name}'`);
    const nt = this.registerParameter(name, t);
    old.grad?.dispose();
    old.dispose();
    return nt;
  }

  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** The one walk over the module tree: every module, depth first, with its dotted name ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this.children) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Every module of the tree (this one included) that is an instance of `type`, depth first. */
  modulesOf<M extends Module>(type: abstract new (...args: never[]) => M): M[] {
    return this.namedModules().map(([, m]) => m).filter((m): m is M => m instanceof type);
  }

  /** Parameters with dotted names, in registration order (PyTorch order). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.paramSlots) out.push([prefix + n, t]);
    for (const [n, m] of this.children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.bufferSlots) out.push([prefix + n, t]);
    for (const [n, m] of this.children) out.push(...m.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Scalar integer state that PyTorch keeps as tensors (e.g. num_batches_tracked). */
  namedCounters(prefix = ''): [string, { get(): number; set(v: number): void }][] {
    const out: [string, { get(): number; set(v: number): void }][] = [];
    for (const [n, c] of this.ownCounters()) out.push([prefix + n, c]);
    for (const [n, m] of this.children) out.push(...m.namedCounters(`${prefix}${n}.`));
    return out;
  }

  protected ownCounters(): [string, { get(): number; set(v: number): void }][] {
    return [];
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters and buffers by name (the tensors themselves, not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Copies tensors into the registered parameters and buffers; strict: every name must match. */
  loadStateDict(state: Map<string, Tensor>, strict = true): void {
    const own = this.stateDict();
    if (strict) {
      const missing = [...own.keys()].filter((k) => !state.has(k));
      const extra = [...state.keys()].filter((k) => !own.has(k));
      if (missing.length || extra.length)
        throw new Error(`loadStateDict: missing [${missing.join(', ')}], unexpected [${extra.join(', ')}]`);
    }
    for (const [k, t] of own) {
      const src = state.get(k);
      if (!src) continue;
      if (src.shape.length !== t.shape.length || src.shape.some((d, i) => d !== t.shape[i]))
        throw new Error(`loadStateDict: '${k}' has shape [${src.shape.join(',')}], the model expects [${t.shape.join(',')}]`);
      t.copyFrom(src);
    }
  }

  train(mode = true): this {
    this.training = mode;
    for (const m of this.children.values()) m.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Drops accumulated gradients (releases their memory). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  parameterCount(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }

  /** Releases every tensor of the module tree. */
  dispose(): void {
    for (const t of this.paramSlots.values()) {
      t.grad?.dispose();
      t.grad = null;
      t.dispose();
    }
    for (const t of this.bufferSlots.values()) t.dispose();
    for (const m of this.children.values()) m.dispose();
  }
}

/** A module that maps one tensor to one tensor, for composing with Sequential. */
export abstract class Layer extends Module {
  abstract forward(x: Tensor): Tensor;
}

/** Runs its layers in order; they are named "0", "1", ... like torch.nn.Sequential. */
export class Sequential extends Layer {
  readonly layers: Layer[];
  constructor(...layers: Layer[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.registerModule(String(i), l));
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const l of this.layers) y = l.forward(y);
    return y;
  }
}
