/**
 * The benchmark's homegrown peer (bench/peer.ts) does what BENCHMARKS.md says it does: verifies
 * the SNS signature with the project's verifier and UPSERTs one row per SES message into a real
 * PostgreSQL (started as the cluster tier starts it), answering 200 only once the row is written;
 * a forged or foreign notification gets no row. In the cluster tier because it needs PostgreSQL.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSesSandbox, type SesSandbox } from '../../src/sandbox';
import { Poster } from '../../bench/load';
import { startPeer, type Peer } from '../../bench/peer';
import { sandboxVerifier, signedEvent } from '../../bench/sns';
import { PG_PASSWORD, PG_USER, startPostgres, type Postgres } from './cluster';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-lifecycle-events';
let root: string;
let sandbox: SesSandbox;
let pg: Postgres;
let peer: Peer;
let poster: Poster;
let db: PgClient;

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'ses-lifecycle-peer-test-'));
  chmodSync(root, 0o755);
  sandbox = await startSesSandbox({});
  pg = await startPostgres(path.join(root, 'pg'));
  peer = await startPeer({ pg: { port: pg.port, user: PG_USER, password: PG_PASSWORD }, verifier: sandboxVerifier(sandbox), allowedTopicArns: [TOPIC] });
  poster = new Poster(peer.url, 4);
  db = new PgClient({ host: '127.0.0.1', port: pg.port, user: PG_USER, password: PG_PASSWORD, database: 'postgres' });
  await db.connect();
});

afterAll(async () => {
  poster?.close();
  await db?.end();
  await peer?.close();
  await pg?.dispose();
  await sandbox?.close();
  rmSync(root, { recursive: true, force: true });
});

const row = async (id: string): Promise<{ status: string; events: number } | undefined> => (await db.query<{ status: string; events: number }>('SELECT status, events FROM email_status WHERE ses_message_id = $1', [id])).rows[0];

it('a signed event is one UPSERT: the row changes status on the next event', async () => {
  const lc = { lifecycleId: 'peer-test-1', sesMessageId: '0100-peer-test-1', recipient: 'a@example.com' };
  const send = signedEvent(sandbox, TOPIC, 'Send', lc);
  expect((await poster.post(send.body, send.headers)).status).toBe(200);
  expect(await row(lc.sesMessageId)).toEqual({ status: 'send', events: 1 });
  const delivery = signedEvent(sandbox, TOPIC, 'Delivery', lc);
  expect((await poster.post(delivery.body, delivery.headers)).status).toBe(200);
  expect(await row(lc.sesMessageId)).toEqual({ status: 'delivery', events: 2 });
  expect(await peer.counts()).toEqual({ rows: 1, events: 2 });
});

it('a forged message (changed after signing) or a foreign topic gets 403 and no row', async () => {
  const lc = { lifecycleId: 'peer-test-2', sesMessageId: '0100-peer-test-2', recipient: 'b@example.com' };
  const ok = signedEvent(sandbox, TOPIC, 'Bounce', lc);
  const forged = JSON.parse(ok.body) as { Message: string };
  forged.Message = forged.Message.replace('0100-peer-test-2', '0100-peer-test-x');
  expect((await poster.post(JSON.stringify(forged), ok.headers)).status).toBe(403);
  const foreign = signedEvent(sandbox, 'arn:aws:sns:us-east-1:123456789012:other', 'Bounce', lc);
  expect((await poster.post(foreign.body, foreign.headers)).status).toBe(403);
  expect(await row('0100-peer-test-x')).toBeUndefined();
  expect(await row(lc.sesMessageId)).toBeUndefined();
  expect((await poster.post(ok.body, ok.headers)).status).toBe(200);
  expect(await row(lc.sesMessageId)).toEqual({ status: 'bounce', events: 1 });
});
