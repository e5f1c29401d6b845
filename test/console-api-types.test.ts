// The console's API client is typed from the OpenAPI description: the checked-in types must be what the
// description generates now (regenerate with `npm run console:api`).
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { consoleApiTypes, SCHEMA_TYPES } from '../scripts/console-api.js';

describe('console API types', () => {
  it('are generated from the current OpenAPI description', async () => {
    const checkedIn = await readFile(SCHEMA_TYPES, 'utf8');
    expect(checkedIn === (await consoleApiTypes()), 'run npm run console:api').toBe(true);
  });
});
