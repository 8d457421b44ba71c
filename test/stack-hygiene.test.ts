/**
 * Dev-stack hygiene on real files, processes and HTTP: the DATA_DIR lock (a live owner refuses,
 * a dead owner's lock is taken over) and the sandbox's suppression list surviving a restart.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateConfigurationSetCommand,
  DeleteSuppressedDestinationCommand,
  GetConfigurationSetEventDestinationsCommand,
  GetSuppressedDestinationCommand,
  ListConfigurationSetsCommand,
  ListSuppressedDestinationsCommand,
  PutSuppressedDestinationCommand,
  SendEmailCommand,
} from '@aws-sdk/client-sesv2';
import { afterAll, describe, expect, it } from 'vitest';
import { DataDirLockedError, lockDataDir } from '../src/data-dir-lock';
import { startSesSandbox } from '../src/sandbox';
import { createSesClient } from '../src/worker';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'ses-lifecycle-hygiene-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The pid of a process that has exited (so it is certainly dead). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('DATA_DIR lock', () => {
  it('refuses while a live process holds it, naming the folder; free again after release', async () => {
    const dir = path.join(tmp, 'live');
    // A live owner: a child process that holds the lock until told to stop.
    const holder = spawn(
      process.execPath,
      ['--import', 'tsx', '-e', `const { lockDataDir } = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'data-dir-lock.ts'))}); lockDataDir(${JSON.stringify(dir)}); console.log('locked'); process.stdin.on('data', () => process.exit(0));`],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
      holder.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
    });
    let err: unknown;
    try {
      lockDataDir(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataDirLockedError);
    expect((err as Error).message).toBe(`DATA_DIR ${dir} is in use by another ses-lifecycle stack (pid ${holder.pid}); stop that one, or set DATA_DIR to another folder`);
    // The holder exits normally: its 'exit' hook removes the lock.
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    holder.stdin.write('stop\n');
    await exited;
    expect(existsSync(path.join(dir, 'stack.lock'))).toBe(false);
    const lock = lockDataDir(dir);
    lock.release();
    expect(existsSync(lock.file)).toBe(false);
  });

  it('takes over a stale lock left by a dead process', async () => {
    const dir = path.join(tmp, 'stale');
    const first = lockDataDir(dir);
    const pid = await deadPid();
    writeFileSync(first.file, `${pid}\n2026-01-01T00:00:00.000Z\n`); // as if a SIGKILLed stack left it
    const lock = lockDataDir(dir);
    expect(readFileSync(lock.file, 'utf8').split('\n')[0]).toBe(String(process.pid));
    // The same process cannot take it twice (two stacks in one process share nothing either).
    expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
    lock.release();
  });
});

describe('sandbox state under DATA_DIR', () => {
  it('keeps the account suppression list across a restart', async () => {
    const stateDir = path.join(tmp, 'sandbox');
    const first = await startSesSandbox({ stateDir });
    const ses1 = createSesClient({ region: first.region, endpoint: first.endpoint, credentials: first.credentials });
    try {
      await ses1.send(new PutSuppressedDestinationCommand({ EmailAddress: 'bounce@simulator.amazonses.com', Reason: 'BOUNCE' }));
      await ses1.send(new PutSuppressedDestinationCommand({ EmailAddress: 'gone@example.com', Reason: 'COMPLAINT' }));
      await ses1.send(new DeleteSuppressedDestinationCommand({ EmailAddress: 'gone@example.com' }));
    } finally {
      ses1.destroy();
      await first.close();
    }

    const second = await startSesSandbox({ stateDir });
    const ses2 = createSesClient({ region: second.region, endpoint: second.endpoint, credentials: second.credentials });
    try {
      const kept = await ses2.send(new GetSuppressedDestinationCommand({ EmailAddress: 'bounce@simulator.amazonses.com' }));
      expect(kept.SuppressedDestination).toMatchObject({ EmailAddress: 'bounce@simulator.amazonses.com', Reason: 'BOUNCE' });
      await expect(ses2.send(new GetSuppressedDestinationCommand({ EmailAddress: 'gone@example.com' }))).rejects.toMatchObject({ name: 'NotFoundException' });
      const listed = await ses2.send(new ListSuppressedDestinationsCommand({}));
      expect(listed.SuppressedDestinationSummaries?.map((d) => d.EmailAddress)).toEqual(['bounce@simulator.amazonses.com']);
    } finally {
      ses2.destroy();
      await second.close();
    }
    // Without stateDir nothing is written or read.
    const memory = await startSesSandbox();
    const ses3 = createSesClient({ region: memory.region, endpoint: memory.endpoint, credentials: memory.credentials });
    try {
      await expect(ses3.send(new GetSuppressedDestinationCommand({ EmailAddress: 'bounce@simulator.amazonses.com' }))).rejects.toMatchObject({ name: 'NotFoundException' });
    } finally {
      ses3.destroy();
      await memory.close();
    }
  });

  it('keeps configuration sets, their event destinations and the soft-bounce memory across a restart; the stack setup stays idempotent', async () => {
    const stateDir = path.join(tmp, 'sandbox-config');
    const first = await startSesSandbox({ stateDir });
    const ses1 = createSesClient({ region: first.region, endpoint: first.endpoint, credentials: first.credentials });
    try {
      await ses1.send(new CreateConfigurationSetCommand({ ConfigurationSetName: 'app-events', SendingOptions: { SendingEnabled: true } }));
      await first.createConfigurationSet('stack-set', { webhookUrl: 'http://127.0.0.1:9/sns' });
      // softbounce@ bounces the first time only; after a restart it must not bounce again.
      await ses1.send(new SendEmailCommand({ FromEmailAddress: 'app@example.com', ConfigurationSetName: 'stack-set', Destination: { ToAddresses: ['softbounce+keep@sandbox.ses-lifecycle.test'] }, Content: { Simple: { Subject: { Data: 's' }, Body: { Text: { Data: 't' } } } } }));
    } finally {
      ses1.destroy();
      await first.close();
    }
    const saved = JSON.parse(readFileSync(path.join(stateDir, 'sandbox-state.json'), 'utf8')) as { version: number; softBounced: string[] };
    expect(saved.version).toBe(2);
    expect(saved.softBounced).toEqual(['softbounce+keep@sandbox.ses-lifecycle.test']);

    const second = await startSesSandbox({ stateDir });
    const ses2 = createSesClient({ region: second.region, endpoint: second.endpoint, credentials: second.credentials });
    try {
      const names = (await ses2.send(new ListConfigurationSetsCommand({}))).ConfigurationSets;
      expect(names).toEqual(['app-events', 'stack-set']);
      const dests = await ses2.send(new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: 'stack-set' }));
      expect(dests.EventDestinations?.[0]).toMatchObject({ Name: 'sns', Enabled: true, SnsDestination: { TopicArn: expect.stringMatching(/:stack-set-events$/) as unknown } });
      // The stack's own setup on a restored folder neither fails nor duplicates its destination.
      await second.createConfigurationSet('stack-set', { webhookUrl: 'http://127.0.0.1:9/sns' });
      const again = await ses2.send(new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: 'stack-set' }));
      expect(again.EventDestinations).toHaveLength(1);
    } finally {
      ses2.destroy();
      await second.close();
    }
  });

  it('refuses a corrupt state file with one line that says how to recover', async () => {
    const stateDir = path.join(tmp, 'corrupt');
    mkdirSync(stateDir);
    writeFileSync(path.join(stateDir, 'sandbox-state.json'), JSON.stringify({ version: 1, suppressedDestinations: [{ EmailAddress: 1 }] }));
    await expect(startSesSandbox({ stateDir })).rejects.toThrow(/^sandbox state file .*sandbox-state\.json is not valid \(suppressedDestinations\.0\.EmailAddress: .*\); delete it to start empty$/);
  });
});
