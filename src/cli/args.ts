// A small, strict command-line parser: `--name value`, `--name=value` and boolean `--flag`.
// Unknown flags are errors so that typos never silently fall back to defaults.
export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string | true>;
}

export function parseArgs(argv: string[]): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) flags.set(a.slice(2), argv[++i]);
      else flags.set(a.slice(2), true);
    } else positional.push(a);
  }
  return { positional, flags };
}

export class Flags {
  private readonly used = new Set<string>();
  constructor(private readonly flags: Map<string, string | true>) {}

  bool(name: string): boolean {
    this.used.add(name);
    const v = this.flags.get(name);
    if (v === undefined) return false;
    if (v === true || v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new Error(`--${name} is a switch; got '${v}'`);
  }

  str(name: string, def: string): string {
    this.used.add(name);
    const v = this.flags.get(name);
    if (v === undefined) return def;
    if (v === true) throw new Error(`--${name} needs a value`);
    return v;
  }

  int(name: string, def: number, min = 1): number {
    const s = this.str(name, String(def));
    const v = Number(s);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got '${s}'`);
    return v;
  }

  num(name: string, def: number): number {
    const s = this.str(name, String(def));
    const v = Number(s);
    if (!Number.isFinite(v)) throw new Error(`--${name} must be a number, got '${s}'`);
    return v;
  }

  /** Throws on any flag that no accessor asked for. */
  done(): void {
    const unknown = [...this.flags.keys()].filter((k) => !this.used.has(k));
    if (unknown.length) throw new Error(`unknown option${unknown.length > 1 ? 's' : ''}: ${unknown.map((u) => '--' + u).join(', ')}`);
  }
}
