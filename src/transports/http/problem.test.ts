import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CustosError } from '../../domain/errors.js';
import { problemBody, sendProblem } from './problem.js';

describe('problemBody', () => {
  it('maps a CustosError to RFC 9457 members with its detail fields as extensions', () => {
    const err = new CustosError({
      code: 'stow.too-large',
      message: 'the request body exceeds the limit',
      httpStatus: 413,
      detail: { limit: 10, status: 200, type: 'spoofed' },
    });
    expect(problemBody(err, '/dicom-web/studies')).toEqual({
      type: 'urn:custos:problem:stow.too-large',
      title: 'Payload Too Large',
      status: 413,
      detail: 'the request body exceeds the limit',
      code: 'stow.too-large',
      instance: '/dicom-web/studies',
      limit: 10,
    });
  });

  it('never leaks the message or stack of an unexpected error', () => {
    const body = problemBody(new Error('ENOENT /var/lib/custos/secret-patient-Doe^John.dcm'));
    expect(body).toEqual({
      type: 'urn:custos:problem:internal',
      title: 'Internal Server Error',
      status: 500,
      detail: 'internal error',
      code: 'internal',
    });
    expect(JSON.stringify(problemBody('a thrown string'))).not.toContain('thrown string');
  });

  it('sends 500 for a CustosError whose status is not an error status', () => {
    expect(problemBody(new CustosError({ code: 'x', message: 'm', httpStatus: 200 })).status).toBe(500);
  });
});

describe('sendProblem', () => {
  const servers: ReturnType<typeof createServer>[] = [];
  afterEach(() => servers.splice(0).forEach((s) => s.close()));

  async function serve(handler: (res: ServerResponse) => void): Promise<string> {
    const server = createServer((_req, res) => handler(res));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  it('writes application/problem+json with the error status', async () => {
    const url = await serve((res) =>
      sendProblem(
        res,
        new CustosError({ code: 'auth.missing-token', message: 'log in', httpStatus: 401 }),
        '/x',
      ),
    );
    const res = await fetch(url);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({ status: 401, code: 'auth.missing-token', instance: '/x' });
  });

  it('breaks the connection when the response has already started, so a partial body is not taken as complete', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'Content-Type': 'multipart/related; boundary=b' });
      res.write('--b\r\n\r\npartial', () => sendProblem(res, new Error('disk failed')));
    });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });
});
