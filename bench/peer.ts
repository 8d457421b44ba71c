/**
 * The homegrown peer: what the seed question's own design costs ("look up the message id in my
 * database and change its status"), measured beside the product in `npm run bench`.
 *
 * A Fastify webhook that handles an SNS Notification the way ours does up to the point where ours
 * signals Temporal — the same body limit, the project's own envelope parser (parseSnsBody), replay
 * window (checkTimestamp), topic allowlist, signature verification (SnsVerifier, certificate
 * cached) and SES event parser (parseSesEventText) — and then runs one UPSERT into PostgreSQL:
 *
 *   INSERT INTO email_status (ses_message_id, status, events) VALUES ($1, $2, 1)
 *   ON CONFLICT (ses_message_id) DO UPDATE SET status = EXCLUDED.status, updated_at = now(),
 *     events = email_status.events + 1
 *
 * answering 200 once the row is written (the same promise as ours: answered = recorded). What the
 * peer does not do is everything the lifecycle adds: no ordering of events, no per-recipient
 * state, no timers (delivery deadline, complaint window), no suppression, no resend, no history.
 * PostgreSQL is a throwaway cluster started as `npm run test:cluster` starts it
 * (test/cluster/cluster.ts startPostgres: fsync off, as for the Temporal cluster).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { Pool } from 'pg';
import { parseSesEventText } from '../src/ses-events';
import { checkTimestamp, DEFAULT_BODY_LIMIT, DEFAULT_REPLAY_WINDOW_MS, parseSnsBody, type SnsVerifier } from '../src/webhook';

export interface PeerOptions {
  pg: { port: number; user: string; password: string; database?: string };
  verifier: SnsVerifier;
  allowedTopicArns: readonly string[];
  /** PostgreSQL connections (default 10, node-postgres' default pool size). */
  poolSize?: number;
}

export interface Peer {
  readonly url: string;
  /** Rows in email_status and the sum of their event counters. */
  counts(): Promise<{ rows: number; events: number }>;
  close(): Promise<void>;
}

const UPSERT =
  'INSERT INTO email_status (ses_message_id, status, events) VALUES ($1, $2, 1) ' +
  'ON CONFLICT (ses_message_id) DO UPDATE SET status = EXCLUDED.status, updated_at = now(), events = email_status.events + 1';

export async function startPeer(opts: PeerOptions): Promise<Peer> {
  const pool = new Pool({ host: '127.0.0.1', port: opts.pg.port, user: opts.pg.user, password: opts.pg.password, database: opts.pg.database ?? 'postgres', max: opts.poolSize ?? 10 });
  await pool.query(
    'CREATE TABLE IF NOT EXISTS email_status (ses_message_id text PRIMARY KEY, status text NOT NULL, events integer NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())',
  );
  const allowed = new Set(opts.allowedTopicArns);
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: DEFAULT_BODY_LIMIT });
  // SNS posts JSON as text/plain.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.post('/sns', async (req, reply) => {
    const parsed = parseSnsBody(typeof req.body === 'string' ? req.body : '');
    if (parsed.kind !== 'envelope' || parsed.envelope.Type !== 'Notification') return reply.code(400).send('not an SNS notification');
    const env = parsed.envelope;
    if (!allowed.has(env.TopicArn)) return reply.code(403).send('topic not allowed');
    const stale = checkTimestamp(env.Timestamp, Date.now(), DEFAULT_REPLAY_WINDOW_MS);
    if (stale) return reply.code(400).send(stale);
    try {
      await opts.verifier.verify(env);
    } catch {
      return reply.code(403).send('bad signature');
    }
    let result;
    try {
      result = parseSesEventText(env.Message, { snsMessageId: env.MessageId });
    } catch (err) {
      return reply.code(400).send((err as Error).message);
    }
    if (result.kind !== 'event') return reply.code(200).send('ignored');
    await pool.query(UPSERT, [result.event.sesMessageId, result.event.type.toLowerCase()]);
    return reply.code(200).send('ok');
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url: `${url}/sns`,
    async counts() {
      const r = await pool.query<{ rows: string; events: string | null }>('SELECT count(*) AS rows, sum(events) AS events FROM email_status');
      return { rows: Number(r.rows[0]?.rows ?? 0), events: Number(r.rows[0]?.events ?? 0) };
    },
    async close() {
      await app.close();
      await pool.end();
    },
  };
}
