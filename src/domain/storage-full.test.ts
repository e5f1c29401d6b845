import { describe, expect, it } from 'vitest';
import { CustosError } from './errors.js';
import { indexUnavailable, isRetryLater } from './retry-later.js';
import { isNoRoomErrno, storageFull, storageUnwritable, storageWriteError } from './storage-full.js';

describe('storage-full errors', () => {
  it('carry A700 for DICOM and 507 for HTTP, and say where there was no room', () => {
    const e = storageFull('the blob volume');
    expect(e).toMatchObject({ code: 'storage.full', httpStatus: 507, dicomStatus: 0xa700 });
    expect(e.message).toMatch(/storage is full \(the blob volume\)/);
  });

  it('are recognised through the errors that wrap them, as is an index out of reach', () => {
    const wrapped = new CustosError({ code: 'ingest.failed', message: 'x', cause: storageFull('v') });
    expect(isRetryLater(wrapped)).toBe(true);
    expect(isRetryLater(indexUnavailable(new Error('connect ECONNREFUSED')))).toBe(true);
    expect(isRetryLater(new CustosError({ code: 'ingest.failed', message: 'x' }))).toBe(false);
    expect(isRetryLater('ENOSPC')).toBe(false);
  });

  it('say the index is out of reach with 503, Retry-After 5 s, and A700', () => {
    const e = indexUnavailable(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
    expect(e).toMatchObject({ code: 'index.unavailable', httpStatus: 503, dicomStatus: 0xa700 });
    expect(e.detail).toEqual({ retryAfterSeconds: 5 });
    expect(e.message).toBe('the index database cannot be reached; try again shortly');
    expect((e.cause as Error).message).toBe('connect ECONNREFUSED 127.0.0.1:5432');
  });

  it('come from ENOSPC and EDQUOT only', () => {
    expect(['ENOSPC', 'EDQUOT', 'EIO', undefined].map(isNoRoomErrno)).toEqual([true, true, false, false]);
  });

  it('read a volume that refuses writes as storage.unwritable: A700, 503 with Retry-After 60 s, retry later', () => {
    const e = storageUnwritable('the blob volume is read-only');
    expect(e).toMatchObject({ code: 'storage.unwritable', httpStatus: 503, dicomStatus: 0xa700 });
    expect(e.detail).toEqual({ retryAfterSeconds: 60 });
    expect(e.message).toMatch(/cannot write to its storage \(the blob volume is read-only\)/);
    expect(isRetryLater(new CustosError({ code: 'ingest.failed', message: 'x', cause: e }))).toBe(true);
  });

  it("tell a write's errno apart: no room, read-only, failing, or something else passed on as it came", () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    const of = (code: string) => storageWriteError('the blob volume', errno(code));
    expect(of('ENOSPC')).toMatchObject({ code: 'storage.full' });
    expect(of('EDQUOT')).toMatchObject({ code: 'storage.full' });
    expect(of('EROFS')).toMatchObject({
      code: 'storage.unwritable',
      message: expect.stringMatching(/\(the blob volume is read-only\)/),
    });
    expect(of('EIO')).toMatchObject({
      code: 'storage.unwritable',
      message: expect.stringMatching(/\(the blob volume failed a write: input\/output error\)/),
    });
    const other = errno('EBADF');
    expect(storageWriteError('the blob volume', other)).toBe(other);
    expect((of('EROFS') as Error).cause).toMatchObject({ code: 'EROFS' });
  });
});
