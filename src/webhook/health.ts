/**
 * Liveness and readiness: `GET /healthz` (the process answers) and `GET /readyz` (Temporal answers,
 * so SNS deliveries can be recorded). Load balancers should route SNS only to ready instances.
 */
import type { Client } from '@temporalio/client';
import type { FastifyPluginCallback } from 'fastify';

/** Checks that Temporal answers, with a short deadline; results are cached briefly and shared. */
export class TemporalReadiness {
  private cached: { at: number; ready: boolean } | undefined;
  private pending: Promise<boolean> | undefined;

  constructor(
    private readonly client: Client,
    private readonly opts: { timeoutMs?: number; cacheMs?: number } = {},
  ) {}

  /** Resolves true when `GetSystemInfo` succeeded within the deadline. Never rejects. */
  async check(): Promise<boolean> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < (this.opts.cacheMs ?? 1_000)) return this.cached.ready;
    this.pending ??= this.probe().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async probe(): Promise<boolean> {
    const { connection } = this.client;
    let ready: boolean;
    try {
      await connection.withDeadline(Date.now() + (this.opts.timeoutMs ?? 2_000), () => connection.workflowService.getSystemInfo({}));
      ready = true;
    } catch {
      ready = false;
    }
    this.cached = { at: Date.now(), ready };
    return ready;
  }
}

/** Registers `/healthz` and `/readyz`. */
export const healthRoutes: FastifyPluginCallback<{ readiness: TemporalReadiness }> = (app, { readiness }, done) => {
  app.get('/healthz', async (_request, reply) => reply.code(200).send({ status: 'ok' }));
  app.get('/readyz', async (request, reply) => {
    const ready = await readiness.check();
    if (!ready) request.log.warn('not ready: Temporal does not answer');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'temporal unavailable' });
  });
  done();
};
