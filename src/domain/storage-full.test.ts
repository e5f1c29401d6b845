import { describe, expect, it } from 'vitest';
import { CustosError } from './errors.js';
import { isNoRoomErrno, isStorageFull, storageFull } from './storage-full.js';

describe('storage-full errors', () => {
  it('carry A700 for DICOM and 507 for HTTP, and say where there was no room', () => {
    const e = storageFull('the blob volume');
    expect(e).toMatchObject({ code: 'storage.full', httpStatus: 507, dicomStatus: 0xa700 });
    expect(e.message).toMatch(/storage is full \(the blob volume\)/);
  });

  it('are recognised through the errors that wrap them', () => {
    const wrapped = new CustosError({ code: 'ingest.failed', message: 'x', cause: storageFull('v') });
    expect(isStorageFull(wrapped)).toBe(true);
    expect(isStorageFull(new CustosError({ code: 'ingest.failed', message: 'x' }))).toBe(false);
    expect(isStorageFull('ENOSPC')).toBe(false);
  });

  it('come from ENOSPC and EDQUOT only', () => {
    expect(['ENOSPC', 'EDQUOT', 'EIO', undefined].map(isNoRoomErrno)).toEqual([true, true, false, false]);
  });
});
