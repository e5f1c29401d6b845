import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { CustosError } from '../../domain/errors.js';
import type { IdentityTokenVerifier, VerifiedIdentity } from '../../ports/identity-tokens.js';

export interface OidcSettings {
  issuer: string;
  audience: string;
  /** Default: the issuer's discovery document (`/.well-known/openid-configuration`). */
  jwksUri?: string | undefined;
  /** Asymmetric algorithms accepted; `none` and HMAC are never accepted whatever is configured. */
  algorithms: string[];
  usernameClaim: string;
  roleClaim: string;
  departmentClaim: string;
  /** Identity provider role value → Custos role; a value not listed maps to itself only if it is a Custos role. */
  roleMap: Record<string, string>;
  knownRoles: readonly string[];
  clockToleranceSeconds: number;
}

const ASYMMETRIC = /^(RS|PS|ES)(256|384|512)$|^EdDSA$/;

const invalid = (message: string, cause?: unknown) =>
  new CustosError({
    code: 'auth.oidc-invalid',
    message: `the identity provider token was refused: ${message}`,
    httpStatus: 401,
    ...(cause ? { cause } : {}),
  });

/**
 * OIDC bearer tokens checked against the issuer's JWKS with `jose`: signature by a key the issuer publishes,
 * issuer, audience, expiry and not-before (with a small clock tolerance), and an algorithm allow-list that can
 * only ever hold asymmetric algorithms, so neither `alg: none` nor an HMAC signed with the public key passes.
 */
export class JoseOidcVerifier implements IdentityTokenVerifier {
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private readonly algorithms: string[];

  constructor(
    private readonly s: OidcSettings,
    private readonly fetchJson: (url: string) => Promise<unknown> = defaultFetchJson,
  ) {
    this.algorithms = s.algorithms.filter((a) => ASYMMETRIC.test(a));
    if (this.algorithms.length === 0)
      throw new CustosError({
        code: 'config.invalid',
        message:
          'configuration oidc.algorithms: needs at least one asymmetric algorithm (RS256, ES256, EdDSA, …)',
      });
  }

  private async keySet() {
    if (this.jwks) return this.jwks;
    let uri = this.s.jwksUri;
    if (!uri) {
      const discovery = (await this.fetchJson(
        `${this.s.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
      ).catch((err: unknown) => {
        throw invalid(`the issuer's discovery document cannot be read (${(err as Error).message})`, err);
      })) as { issuer?: unknown; jwks_uri?: unknown };
      if (discovery.issuer !== this.s.issuer)
        throw invalid(
          `the discovery document names issuer '${String(discovery.issuer)}', not '${this.s.issuer}'`,
        );
      if (typeof discovery.jwks_uri !== 'string') throw invalid('the discovery document has no jwks_uri');
      uri = discovery.jwks_uri;
    }
    this.jwks = createRemoteJWKSet(new URL(uri), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    return this.jwks;
  }

  async verify(token: string): Promise<VerifiedIdentity> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await this.keySet(), {
        issuer: this.s.issuer,
        audience: this.s.audience,
        algorithms: this.algorithms,
        clockTolerance: this.s.clockToleranceSeconds,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (err) {
      if (err instanceof CustosError) throw err;
      throw invalid(describe(err), err);
    }
    const username = payload[this.s.usernameClaim];
    if (typeof username !== 'string' || username === '')
      throw invalid(`the token has no '${this.s.usernameClaim}' claim to name the account`);
    const department = payload[this.s.departmentClaim];
    return {
      subject: payload.sub!,
      issuer: payload.iss!,
      username,
      role: this.mapRole(payload[this.s.roleClaim]),
      department: typeof department === 'string' && department !== '' ? department : undefined,
      expiresAt: new Date(payload.exp! * 1000),
    };
  }

  private mapRole(claim: unknown): string | undefined {
    const values = Array.isArray(claim) ? claim : claim === undefined ? [] : [claim];
    for (const v of values) {
      if (typeof v !== 'string') continue;
      const mapped = this.s.roleMap[v] ?? (this.s.knownRoles.includes(v) ? v : undefined);
      if (mapped) return mapped;
    }
    return undefined;
  }
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'it has expired';
  if (err instanceof errors.JWTClaimValidationFailed)
    return `claim '${err.claim}' ${err.reason === 'check_failed' ? 'does not match' : err.reason}: ${err.message}`;
  if (err instanceof errors.JOSEAlgNotAllowed) return `its algorithm is not accepted (${err.message})`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  if (err instanceof errors.JWKSNoMatchingKey) return "no key of the issuer's JWKS matches it";
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid)
    return `it is malformed (${err.message})`;
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid)
    return `the issuer's JWKS cannot be used (${(err as Error).message})`;
  return (err as Error)?.message ?? String(err);
}

async function defaultFetchJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return res.json();
}
