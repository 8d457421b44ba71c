/**
 * Small helpers shared by the sandbox modules: a seeded PRNG, a pending-work tracker, timers
 * that `close()` can cancel, XML escaping and e-mail address handling.
 */
import { randomUUID } from 'node:crypto';

/** Seeded PRNG (mulberry32): `() => number in [0, 1)`. Same seed, same sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates shuffle of a copy of `items` with `rand`. */
export function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}

/**
 * Timers that can all be cancelled at once, so `close()` leaves nothing scheduled. A timer
 * removes itself from the set when it fires.
 */
export class TimerSet {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  /** Schedules `fn` after `ms`; ignored once closed. */
  schedule(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, ms));
    this.timers.add(t);
  }

  get size(): number {
    return this.timers.size;
  }

  /** Cancels every pending timer and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

/**
 * Counts units of pending work by kind and lets callers wait until there is none.
 * Used by `waitForIdle()`.
 */
export class WorkTracker {
  private readonly counts = new Map<string, number>();
  private waiters: { resolve: () => void; reject: (err: Error) => void; timer: NodeJS.Timeout }[] = [];
  private closed = false;

  begin(kind: string): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }

  end(kind: string): void {
    const n = (this.counts.get(kind) ?? 0) - 1;
    if (n <= 0) this.counts.delete(kind);
    else this.counts.set(kind, n);
    if (this.counts.size === 0) this.flush();
  }

  /** A human-readable summary of the pending work, e.g. `"publish-scheduled=2, sns-pending=5"`. */
  describe(): string {
    return [...this.counts].map(([k, v]) => `${k}=${v}`).join(', ') || 'nothing';
  }

  get idle(): boolean {
    return this.counts.size === 0;
  }

  /** Resolves when idle; rejects after `timeoutMs` or on close. */
  waitIdle(timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error('sandbox is closed'));
    if (this.idle) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`sandbox not idle after ${timeoutMs} ms; pending: ${this.describe()}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  private flush(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  /** Rejects every waiter. */
  close(): void {
    this.closed = true;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) {
      clearTimeout(w.timer);
      w.reject(new Error('sandbox closed'));
    }
  }
}

/** Escapes text for XML element content and attribute values. */
export function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => {
    switch (c) {
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '&':
        return '&amp;';
      case "'":
        return '&apos;';
      default:
        return '&quot;';
    }
  });
}

/** An AWS-style request id. */
export function requestId(): string {
  return randomUUID();
}

/**
 * The bare address of `Name <a@b>`, `<a@b>` or `a@b` (not lower-cased).
 */
export function bareAddress(address: string): string {
  const m = /<([^<>]*)>\s*$/.exec(address);
  return (m ? (m[1] ?? '') : address).trim();
}

/** A deliberately simple syntax check: one `@`, non-empty local part, dotted or `localhost` domain. */
export function isValidAddress(address: string): boolean {
  const a = bareAddress(address);
  if (a.length > 320) return false;
  return /^[^\s@<>()",;:]+@([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+$/.test(a) && (a.includes('.', a.indexOf('@')) || a.endsWith('@localhost'));
}

/** Splits an address-list header value on commas outside quotes and angle brackets. */
export function splitAddressList(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let angle = 0;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '<') angle++;
    else if (!quoted && ch === '>') angle = Math.max(0, angle - 1);
    if (ch === ',' && !quoted && angle === 0) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** The domain of an address, lower-cased (`''` when there is none). */
export function domainOf(address: string): string {
  const a = bareAddress(address);
  const at = a.lastIndexOf('@');
  return at < 0 ? '' : a.slice(at + 1).toLowerCase();
}
