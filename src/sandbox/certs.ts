/**
 * The sandbox's own tiny PKI, generated in memory at start (nothing is cached on disk):
 * a CA, an HTTPS server certificate for `localhost`/`127.0.0.1`, and the SNS signing
 * certificate, both issued by the CA.
 *
 * Keys come from Node's native RSA generator (fast); node-forge builds and signs the X.509
 * certificates, which Node's crypto cannot do.
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A certificate and its private key, both PEM. */
export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

/** Everything the sandbox needs for TLS and SNS signing. */
export interface SandboxPki {
  ca: CertAndKey;
  /** HTTPS server certificate (SAN: DNS localhost, IP 127.0.0.1, IP ::1). */
  server: CertAndKey;
  /** SNS message signing certificate, served at the `SigningCertURL`. */
  signing: CertAndKey;
}

async function rsaKeyPair(): Promise<{ privatePem: string; publicPem: string }> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { privatePem: privateKey, publicPem: publicKey };
}

function serialNumber(): string {
  // Positive (high bit clear), 16 bytes of randomness.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + 2 * 365 * 24 * 60 * 60 * 1000);
}

/**
 * Generates a fresh CA, HTTPS server certificate and SNS signing certificate.
 *
 * @param hostnames extra DNS names for the server certificate (besides `localhost`).
 */
export async function generateSandboxPki(hostnames: readonly string[] = []): Promise<SandboxPki> {
  const [caKeys, serverKeys, signingKeys] = await Promise.all([rsaKeyPair(), rsaKeyPair(), rsaKeyPair()]);
  const caPriv = forge.pki.privateKeyFromPem(caKeys.privatePem);

  const caAttrs: forge.pki.CertificateField[] = [
    { name: 'commonName', value: 'ses-lifecycle sandbox CA' },
    { name: 'organizationName', value: 'ses-lifecycle sandbox' },
  ];
  const ca = forge.pki.createCertificate();
  ca.publicKey = forge.pki.publicKeyFromPem(caKeys.publicPem);
  ca.serialNumber = serialNumber();
  validity(ca);
  ca.setSubject(caAttrs);
  ca.setIssuer(caAttrs);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caPriv, forge.md.sha256.create());

  const issue = (publicPem: string, cn: string, extensions: object[]): string => {
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
    cert.serialNumber = serialNumber();
    validity(cert);
    cert.setSubject([
      { name: 'commonName', value: cn },
      { name: 'organizationName', value: 'ses-lifecycle sandbox' },
    ]);
    cert.setIssuer(caAttrs);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
      ...extensions,
    ]);
    cert.sign(caPriv, forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  };

  const altNames = [
    { type: 2, value: 'localhost' },
    ...hostnames.filter((h) => h !== 'localhost').map((value) => ({ type: 2, value })),
    { type: 7, ip: '127.0.0.1' },
    { type: 7, ip: '::1' },
  ];
  const serverCert = issue(serverKeys.publicPem, 'localhost', [
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
  ]);
  const signingCert = issue(signingKeys.publicPem, 'sns.amazonaws.com', [
    { name: 'keyUsage', digitalSignature: true, critical: true },
  ]);

  return {
    ca: { certPem: forge.pki.certificateToPem(ca), keyPem: caKeys.privatePem },
    server: { certPem: serverCert, keyPem: serverKeys.privatePem },
    signing: { certPem: signingCert, keyPem: signingKeys.privatePem },
  };
}
