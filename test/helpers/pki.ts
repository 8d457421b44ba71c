/**
 * A throw-away PKI for webhook certificate tests: real RSA keys and X.509 certificates (node-forge),
 * and an HTTPS server that serves PEM files from chosen paths (or hangs on others).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import forge from 'node-forge';

export interface KeyAndCert {
  keyPem: string;
  certPem: string;
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

function keys(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { privatePem: privateKey, publicPem: publicKey };
}

export interface IssueOptions {
  cn: string;
  /** Issuer; omitted = self-signed. */
  issuer?: KeyAndCert;
  ca?: boolean;
  notBefore?: Date;
  notAfter?: Date;
  /** DNS SANs (and, for servers, IP 127.0.0.1). */
  dnsNames?: string[];
  server?: boolean;
  /** Authority Information Access "CA Issuers" URL. */
  caIssuersUrl?: string;
}

/** Issues a certificate (self-signed when no issuer). */
export function issue(o: IssueOptions): KeyAndCert {
  const k = keys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(k.publicPem);
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = o.notBefore ?? new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = o.notAfter ?? new Date(Date.now() + 30 * 86_400_000);
  const subject = [{ name: 'commonName', value: o.cn }];
  cert.setSubject(subject);
  cert.setIssuer(o.issuer ? o.issuer.cert.subject.attributes : subject);
  const key = forge.pki.privateKeyFromPem(k.privatePem);
  const ext: object[] = [{ name: 'basicConstraints', cA: o.ca === true, critical: true }, { name: 'subjectKeyIdentifier' }];
  if (o.issuer) ext.push({ name: 'authorityKeyIdentifier', keyIdentifier: o.issuer.cert.generateSubjectKeyIdentifier().getBytes() });
  if (o.ca) ext.push({ name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true });
  else ext.push({ name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true });
  if (o.server) ext.push({ name: 'extKeyUsage', serverAuth: true });
  if (o.dnsNames?.length) ext.push({ name: 'subjectAltName', altNames: [...o.dnsNames.map((value) => ({ type: 2, value })), ...(o.server ? [{ type: 7, ip: '127.0.0.1' }] : [])] });
  if (o.caIssuersUrl !== undefined) {
    const { asn1 } = forge;
    const access = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer('1.3.6.1.5.5.7.48.2').getBytes()),
        asn1.create(asn1.Class.CONTEXT_SPECIFIC, 6, false, o.caIssuersUrl),
      ]),
    ]);
    ext.push({ id: '1.3.6.1.5.5.7.1.1', value: asn1.toDer(access).getBytes() });
  }
  cert.setExtensions(ext);
  cert.sign(o.issuer?.key ?? key, forge.md.sha256.create());
  return { keyPem: k.privatePem, certPem: forge.pki.certificateToPem(cert), cert, key };
}

export interface PemServer {
  /** `localhost:<port>` */
  host: string;
  port: number;
  /** Serve `body` at `path` (200). Paths not set hang forever (a tarpit). */
  set(path: string, body: string): void;
  /** Requests received, by path. */
  hits(path: string): number;
  close(): Promise<void>;
}

/** An HTTPS server (TLS certificate issued by `tlsCa`) serving PEM bodies by path. */
export async function startPemServer(tlsCa: KeyAndCert): Promise<PemServer> {
  const tlsCert = issue({ cn: 'localhost', issuer: tlsCa, server: true, dnsNames: ['localhost'] });
  const bodies = new Map<string, string>();
  const counts = new Map<string, number>();
  const srv = https.createServer({ key: tlsCert.keyPem, cert: tlsCert.certPem }, (req, res) => {
    const path = req.url ?? '/';
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const body = bodies.get(path);
    if (body === undefined) return; // hang
    res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return {
    host: `localhost:${port}`,
    port,
    set: (path, body) => bodies.set(path, body),
    hits: (path) => counts.get(path) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  };
}
