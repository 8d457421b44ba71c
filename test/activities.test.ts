/**
 * sendEmail's pre-send suppression lookup: a connection reset there happens before anything is
 * sent, so it must be retryable, never "ambiguous" (which would make the workflow wait for a
 * Send event that cannot come). Real SESv2 client against a server that resets connections.
 */
import net from 'node:net';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createActivities } from '../activities';
import { createSesClient } from '../src/worker';

let server: net.Server;
let port = 0;
beforeAll(async () => {
  server = net.createServer((s) => s.once('data', () => s.destroy())); // reads the request, then resets
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

it('a reset during the suppression lookup is retryable (SesUnavailable), not ambiguous', async () => {
  const ses = createSesClient({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, requestTimeoutMs: 2_000 });
  const activities = createActivities({ ses });
  const err = await new MockActivityEnvironment()
    .run(activities.sendEmail.bind(activities), {
      lifecycleId: 'msg-reset',
      attempt: 1,
      message: { from: 'a@example.com', to: ['b@example.com'], subject: 's', text: 't' },
      recipients: { to: ['b@example.com'], cc: [], bcc: [] },
      checkSuppression: true,
    })
    .catch((e: unknown) => e);
  ses.destroy();
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).nonRetryable).toBe(false);
  expect((err as ApplicationFailure).type).toBe('SesUnavailable');
});
