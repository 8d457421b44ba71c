/** The README documents exactly the configuration the product reads. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ENV_SCHEMA, loadConfig } from '../src/config';

const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

describe('configuration', () => {
  it('README lists every environment variable the config module reads', () => {
    for (const name of Object.keys(ENV_SCHEMA)) expect(readme, name).toContain(`\`${name}\``);
  });

  it('fails at start with the variable named', () => {
    const bad: [Record<string, string>, string][] = [
      [{ WEBHOOK_PORT: '70000' }, 'WEBHOOK_PORT'],
      [{ SES_LIFECYCLE_MODE: 'prod' }, 'SES_LIFECYCLE_MODE'],
      [{ SES_LIFECYCLE_MODE: 'aws' }, 'SNS_ALLOWED_TOPIC_ARNS'],
      [{ SNS_ALLOWED_TOPIC_ARNS: 'arn:aws:sqs:us-east-1:123456789012:q' }, 'SNS_ALLOWED_TOPIC_ARNS'],
      [{ CALLBACK_URL: 'https://app.example/cb' }, 'CALLBACK_SECRET'],
      [{ TEMPORAL_TLS_CERT_PATH: '/x.pem' }, 'TEMPORAL_TLS_KEY_PATH'],
      [{ AWS_REGION: 'mars' }, 'AWS_REGION'],
    ];
    for (const [env, variable] of bad) {
      let err: unknown;
      try {
        loadConfig(env);
      } catch (e) {
        err = e;
      }
      expect(err, variable).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe(variable);
      expect((err as Error).message).toContain(variable);
    }
  });

  it('accepts a real-AWS configuration and freezes it', () => {
    const c = loadConfig({ SES_LIFECYCLE_MODE: 'aws', SNS_ALLOWED_TOPIC_ARNS: 'arn:aws:sns:eu-west-1:123456789012:ses-events', AWS_REGION: 'eu-west-1', TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: 'k' });
    expect(c.webhook.allowedTopicArns).toEqual(['arn:aws:sns:eu-west-1:123456789012:ses-events']);
    expect(c.temporal).toMatchObject({ address: 'ns.acct.tmprl.cloud:7233', apiKey: 'k' });
    expect(Object.isFrozen(c.webhook)).toBe(true);
  });
});
