// The autograd tape (micrograd's rules): every op whose inputs need gradients records a node
// on its output; backward() walks the graph in reverse topological order and gradients
// ACCUMULATE into `grad` (kernels add into zero-initialised buffers). Gradients of
// intermediate tensors are freed as soon as their node has run; leaf gradients are kept.
import { Tensor, GradNode, keep } from './tensor';
import { native } from '../native';
import type { Handle, OptHandle } from '../native';

let gradEnabled = true;

/** Runs fn with gradient recording off (teachers, evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** True when an op on these inputs must be recorded. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/** Attaches a node to `out` if any input needs a gradient. Returns out. */
export function record(out: Tensor, op: string, inputs: Tensor[], backward: (gradOut: Tensor) => void): Tensor {
  if (!needsGrad(...inputs)) return out;
  out.requiresGrad = true;
  const node: GradNode = { op, inputs, backward };
  out.node = node;
  return out;
}

/**
 * The gradient buffer of t, created zero-filled on first use, or null when t needs none.
 * Leaf gradients (parameters) are kept out of memory scopes so they survive tidy().
 */
export function gradOf(t: Tensor): Tensor | null {
  if (!t.requiresGrad) return null;
  if (!t.grad) {
    const g = Tensor.zeros(t.shape, { device: t.device });
    t.grad = t.node ? g : keep(g);
  }
  return t.grad;
}

/** Handle of t's gradient buffer, or -1 when t needs none (kernels skip null outputs). */
export function gradHandle(t: Tensor): OptHandle {
  const g = gradOf(t);
  return g ? g.handle : -1;
}

/**
 * Handle of t's gradient buffer, for a kernel whose gradient output is not optional: a backward
 * rule calls it only for an input that needs a gradient.
 */
export function gradSink(t: Tensor, op: string): Handle {
  const g = gradOf(t);
  if (!g) throw new Error(`${op}: backward asked for the gradient of ${t.describe()}, which needs none`);
  return g.handle;
}

/** A gradient buffer to write into, and whether this is its first write. */
export interface GradTarget<H extends OptHandle = OptHandle> {
  handle: H;
  /** true: the buffer is fresh and uninitialised, so the kernel must write, not accumulate */
  overwrite: boolean;
}

/**
 * For kernels that can overwrite instead of accumulate: t's gradient buffer, allocated
 * uninitialised on first use (saving the zero-fill pass), with overwrite = true that one time.
 * When t needs no gradient and `sink` is set, a scratch buffer (released with the current
 * scope) takes the result; otherwise handle is -1.
 */
export function gradTarget(t: Tensor, sink: true): GradTarget<Handle>;
export function gradTarget(t: Tensor, sink?: boolean): GradTarget;
export function gradTarget(t: Tensor, sink = false): GradTarget {
  if (!t.requiresGrad) {
    if (!sink) return { handle: -1, overwrite: false };
    return { handle: Tensor.empty(t.shape, { device: t.device }).handle, overwrite: true };
  }
  if (t.grad) return { handle: t.grad.handle, overwrite: false };
  const g = Tensor.empty(t.shape, { device: t.device });
  t.grad = t.node ? g : keep(g);
  return { handle: g.handle, overwrite: true };
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !visited.has(c)) {
        visited.add(c);
        stack.push([c, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}

/**
 * Backpropagates from a scalar (one-element) tensor: leaf tensors with requiresGrad get
 * their `grad` accumulated. The graph is released afterwards.
 */
export function backward(root: Tensor, gradRoot?: Tensor): void {
  if (!root.requiresGrad) throw new Error(`backward: ${root.describe()} does not require grad (no parameter reached it)`);
  if (!gradRoot && root.size !== 1)
    throw new Error(`backward: ${root.describe()} is not a scalar; pass the output gradient explicitly`);
  const order = topoOrder(root);
  const g = gradOf(root)!;
  if (gradRoot) {
    if (gradRoot.size !== root.size) throw new Error(`backward: gradient ${gradRoot.describe()} does not match ${root.describe()}`);
    native.axpby(1, gradRoot.handle, 1, g.handle, g.handle, g.size);
  } else native.add_scalar_inplace(g.handle, 1, 1);
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const node = t.node;
      if (!node) continue;
      if (t.grad) node.backward(t.grad);
      // intermediate gradients are not needed past their node
      if (t.grad) {
        t.grad.dispose();
        t.grad = null;
      }
      t.node = null;
    }
  } finally {
    gradEnabled = prev;
    for (const t of order) {
      if (t.node) {
        t.node = null;
        if (t.grad) {
          t.grad.dispose();
          t.grad = null;
        }
      }
    }
  }
}
