/**
 * One stack per DATA_DIR: the embedded dev server's SQLite file and the sandbox's state must
 * never be shared by two running stacks (their lifecycles would mix, and one stack's sends would
 * hang waiting for events the other one receives).
 *
 * The lock is a file `<dir>/stack.lock` holding the owner's pid, created atomically with its
 * content (written to a private file, then hard-linked into place: `link` fails if the lock
 * exists). A lock whose pid is no longer alive (a stack that was SIGKILLed) is taken over.
 */
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Thrown when another live process holds the lock. */
export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`DATA_DIR ${dir} is in use by another ses-lifecycle stack (pid ${pid}); stop that one, or set DATA_DIR to another folder`);
  }
}

/** A held lock. */
export interface DataDirLock {
  readonly file: string;
  /** Removes the lock file if this process still owns it. Idempotent. */
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function ownerOf(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock on `dir` (created if missing).
 *
 * @throws {DataDirLockedError} when a live process holds it.
 */
export function lockDataDir(dir: string): DataDirLock {
  const abs = path.resolve(dir);
  mkdirSync(abs, { recursive: true });
  const file = path.join(abs, 'stack.lock');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${process.pid}\n${new Date().toISOString()}\n`);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, file);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw err;
      }
      const pid = ownerOf(file);
      if (pid !== undefined && (pid === process.pid || alive(pid))) throw new DataDirLockedError(abs, pid);
      // A dead owner's lock: take it over. (Two processes taking over the same stale lock in the
      // same instant could both succeed; a dev-stack start is not that concurrent.)
      rmSync(file, { force: true });
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    if (ownerOf(file) === process.pid) rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { file, release };
}

/** The pid of the live process holding the lock on `dir`, if any (read only; for `doctor`). */
export function dataDirOwner(dir: string): number | undefined {
  const pid = ownerOf(path.join(path.resolve(dir), 'stack.lock'));
  return pid !== undefined && alive(pid) ? pid : undefined;
}
