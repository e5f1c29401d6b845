import type { UserId } from './ids.js';

/** Who is asking. Every service call takes one; there is no anonymous path to data. */
export interface Principal {
  kind: 'user' | 'ae' | 'system';
  id: UserId;
  /** Account name (or AE title) as shown in the audit ledger. */
  name: string;
  role: string;
  /** Network source: client address for HTTP, calling host for DIMSE, 'cli' for local commands. */
  source: string;
  /** How it authenticated ('password', 'token:<id>', 'tls-cert', …), recorded with every audit record. */
  via?: string;
}

/** The built-in administrator role of the first start (issue 4 adds the governance roles). */
export const ADMINISTRATOR_ROLE = 'administrator';
