import { describe, expect, it } from 'vitest';
import { handshakeRefusal } from './dimse-server.js';

const openssl = (code: string, text: string) =>
  Object.assign(
    new Error(`80DC4893707F0000:error:0A0000C1:SSL routines:${text}:../ssl/statem/statem_srvr.c:2226:\n`),
    {
      code,
    },
  );

describe('handshakeRefusal', () => {
  it("says why a TLS handshake was refused in words, OpenSSL's text after them", () => {
    expect(
      handshakeRefusal(openssl('ERR_SSL_NO_SHARED_CIPHER', 'tls_post_process_client_hello:no shared cipher')),
    ).toBe(
      'the client offers none of the cipher suites Custos takes (BCP 195) [80DC4893707F0000:error:0A0000C1:SSL routines:tls_post_process_client_hello:no shared cipher:../ssl/statem/statem_srvr.c:2226:]',
    );
    expect(handshakeRefusal(openssl('ERR_SSL_UNSUPPORTED_PROTOCOL', 'x:unsupported protocol'))).toMatch(
      /^the client offers no TLS version Custos takes \(TLS 1\.2 or 1\.3\) \[.*unsupported protocol/,
    );
    expect(
      handshakeRefusal(openssl('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'x:sslv3 alert bad certificate')),
    ).toMatch(/^the client refused Custos's certificate \(bad certificate\) \[/);
  });

  it('gives an error it has no words for as it came', () => {
    expect(handshakeRefusal(Object.assign(new Error(' something else '), { code: 'ERR_OTHER' }))).toBe(
      'something else',
    );
  });
});
