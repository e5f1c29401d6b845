/** Who an identity provider's bearer token says the caller is, after its signature and claims were checked. */
export interface VerifiedIdentity {
  /** The token's `sub`, unique at the issuer. */
  subject: string;
  issuer: string;
  /** Account name, from the configured claim. */
  username: string;
  /** Custos role after the configured mapping; undefined when the token carries none that maps. */
  role: string | undefined;
  department: string | undefined;
  expiresAt: Date;
}

/** Checks bearer tokens issued by the organisation's identity provider (OIDC access or ID tokens as JWTs). */
export interface IdentityTokenVerifier {
  /** Throws CustosError code 'auth.oidc-invalid' naming what is wrong (signature, issuer, audience, expiry…). */
  verify(token: string): Promise<VerifiedIdentity>;
}
