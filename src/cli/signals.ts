// Stop requests for long commands. The first SIGINT, SIGTERM or SIGUSR1 aborts the run at its next
// batch boundary (the batch in flight is abandoned; checkpoints are written synchronously between
// batches, so a signal never lands inside one), after which the command prints how to resume and
// exits 130 (SIGINT), 143 (SIGTERM) or 138 (SIGUSR1: 128 + 10, for Slurm's --signal=USR1).
// A second signal exits at once with the same code; 'exit' listeners (the run lock) still run,
// and temp folders a write may leave are removed at the next start.
export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGUSR1';

export const STOP_SIGNALS: StopSignal[] = ['SIGINT', 'SIGTERM', 'SIGUSR1'];

export function exitCodeOf(sig: StopSignal): number {
  return sig === 'SIGINT' ? 130 : sig === 'SIGTERM' ? 143 : 138;
}

export interface StopControl {
  /** aborted on the first stop signal */
  readonly signal: AbortSignal;
  /** the first stop signal received, or null */
  requested(): StopSignal | null;
  /** removes the handlers (the default actions apply again), unless a stop was requested */
  dispose(): void;
}

export class StoppedError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'StoppedError';
  }
}

/** Installs the handlers; onFirst runs at the first signal (e.g. to print that the run is stopping). */
export function installStopHandlers(onFirst?: (sig: StopSignal) => void): StopControl {
  const ac = new AbortController();
  let first: StopSignal | null = null;
  const handlers = new Map<StopSignal, () => void>();
  for (const sig of STOP_SIGNALS) {
    const h = () => {
      if (first) {
        process.stderr.write(`\nm2kd: ${sig} again: exiting now\n`);
        process.exit(exitCodeOf(first));
      }
      first = sig;
      onFirst?.(sig);
      ac.abort(new StoppedError(`stopped by ${sig}`, exitCodeOf(sig)));
    };
    handlers.set(sig, h);
    process.on(sig, h);
  }
  return {
    signal: ac.signal,
    requested: () => first,
    dispose: () => {
      if (first) return; // stopping: a second signal must still exit at once with the stop's code
      for (const [sig, h] of handlers) process.removeListener(sig, h);
      handlers.clear();
    },
  };
}
