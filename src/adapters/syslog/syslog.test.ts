import type { AddressInfo, Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleRecord } from '../../../test/support/audit-records.js';
import { makeTestPki, type TestPki } from '../../../test/support/tls-certs.js';
import { startTlsReceiver, startUdpReceiver } from '../../../test/support/syslog-receiver.js';
import { formatSyslog, octetCountingFrame, parseOctetCounted } from './rfc5424.js';
import { SyslogAuditSink } from './syslog-audit-sink.js';
import { TlsSyslogTransport } from './tls-transport.js';
import { UdpSyslogTransport } from './udp-transport.js';

const eventIdOf = (xml: string): string => {
  expect(XMLValidator.validate(xml)).toBe(true);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' }).parse(xml) as {
    AuditMessage: { EventIdentification: { EventID: Record<string, string> } };
  };
  return doc.AuditMessage.EventIdentification.EventID['@csd-code']!;
};

describe('RFC 5424 formatting', () => {
  it('writes PRI 85 (authpriv.notice), version 1, the header fields, no structured data, a BOM and the MSG', () => {
    const m = formatSyslog(
      {
        timestamp: '2026-11-23T08:49:20.123Z',
        hostname: 'custos-a',
        appName: 'custos',
        procId: '4242',
        msgId: 'IHE+RFC-3881',
      },
      '<x>é</x>',
    );
    const head = '<85>1 2026-11-23T08:49:20.123Z custos-a custos 4242 IHE+RFC-3881 - ';
    expect(m.subarray(0, head.length).toString('ascii')).toBe(head);
    expect([...m.subarray(head.length, head.length + 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(m.subarray(head.length + 3).toString('utf8')).toBe('<x>é</x>');
  });

  it('uses the NILVALUE for an absent PROCID, replaces non-printable header characters and refuses overlong fields', () => {
    const m = formatSyslog(
      { timestamp: '2026-11-23T08:49:20Z', hostname: 'a b', appName: 'custos', msgId: 'X' },
      'm',
      { bom: false },
    );
    expect(m.toString('utf8')).toBe('<85>1 2026-11-23T08:49:20Z a_b custos - X - m');
    expect(() =>
      formatSyslog(
        { timestamp: '2026-11-23T08:49:20Z', hostname: 'h', appName: 'a'.repeat(49), msgId: 'X' },
        '',
      ),
    ).toThrow(/APP-NAME/);
    expect(() =>
      formatSyslog({ timestamp: 'yesterday', hostname: 'h', appName: 'a', msgId: 'X' }, ''),
    ).toThrow(/RFC 3339/);
  });

  it('frames by octet count (bytes, not characters) and splits a stream back, keeping a partial frame', () => {
    const a = Buffer.from('héllo', 'utf8');
    const b = Buffer.from('12 34', 'utf8');
    const framed = Buffer.concat([octetCountingFrame(a), octetCountingFrame(b)]);
    expect(framed.subarray(0, 2).toString()).toBe('6 ');
    const { messages, rest } = parseOctetCounted(framed.subarray(0, framed.length - 2));
    expect(messages.map((x) => x.toString('utf8'))).toEqual(['héllo']);
    expect(rest.toString()).toBe('5 12 ');
  });
});

describe('syslog over TLS (RFC 5425) to a loopback receiver', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });

  it('delivers DICOM audit messages in octet-counted frames over TLS 1.2+, presenting the client certificate', async () => {
    const rx = await startTlsReceiver({
      cert: pki.serverCert,
      key: pki.serverKey,
      ca: pki.ca,
      requestCert: true,
    });
    const sink = new SyslogAuditSink(
      new TlsSyslogTransport({
        host: '127.0.0.1',
        port: rx.port,
        ca: pki.ca,
        cert: pki.clientCert,
        key: pki.clientKey,
      }),
      { procId: '99' },
    );
    try {
      const records = [
        sampleRecord({
          seq: 1,
          action: 'login',
          studyUid: undefined,
          patientId: undefined,
          objects: undefined,
        }),
        sampleRecord({
          seq: 2,
          action: 'query',
          patientId: undefined,
          studyUid: undefined,
          objects: { level: 'study' },
        }),
        sampleRecord({
          seq: 3,
          action: 'view-pixels',
          actor: { kind: 'user', id: '7', name: 'Dr. Müller', role: 'r' },
        }),
      ];
      await sink.deliver(records);
      const got = await rx.waitFor(3);
      expect(
        got.map((m) => [m.pri, m.version, m.hostname, m.appName, m.procId, m.msgId, m.structuredData, m.bom]),
      ).toEqual(Array(3).fill([85, '1', 'custos-a.example.org', 'custos', '99', 'IHE+RFC-3881', '-', true]));
      expect(got.map((m) => eventIdOf(m.msg))).toEqual(['110114', '110112', '110103']);
      expect(got[2]!.msg).toContain('UserID="Dr. Müller"');
      expect(got[0]!.timestamp).toBe('2026-11-23T08:49:20.123Z');
      expect(rx.clientSubjects).toEqual(['client']);
      expect(['TLSv1.2', 'TLSv1.3']).toContain(rx.protocols[0]);
      expect(sink.connection()).toEqual({ epoch: 1, open: true });
    } finally {
      await sink.close();
      await rx.close();
    }
  });

  it('refuses a repository whose certificate is not signed by the configured CA', async () => {
    const rx = await startTlsReceiver({ cert: pki.serverCert, key: pki.serverKey });
    const t = new TlsSyslogTransport({ host: '127.0.0.1', port: rx.port, ca: pki.otherCa });
    try {
      await expect(t.send([Buffer.from('x')])).rejects.toMatchObject({ code: 'syslog.connect-failed' });
      expect(rx.messages).toEqual([]);
    } finally {
      await t.close();
      await rx.close();
    }
  });

  it('notices the repository closing the connection and reconnects with a new epoch', async () => {
    const rx = await startTlsReceiver({ cert: pki.serverCert, key: pki.serverKey });
    const t = new TlsSyslogTransport({ host: '127.0.0.1', port: rx.port, ca: pki.ca });
    try {
      await t.send([Buffer.from('<85>1 2026-11-23T08:49:20Z h a - X - one')]);
      await rx.waitFor(1);
      const port = rx.port;
      await rx.close();
      await new Promise((r) => setTimeout(r, 50));
      expect(t.connection()).toEqual({ epoch: 1, open: false });
      await expect(t.send([Buffer.from('lost')])).rejects.toMatchObject({ code: 'syslog.connect-failed' });
      const rx2 = await startTlsReceiver({ cert: pki.serverCert, key: pki.serverKey, port });
      try {
        await t.send([Buffer.from('<85>1 2026-11-23T08:49:20Z h a - X - two')]);
        const got = await rx2.waitFor(1);
        expect(got[0]!.msg).toBe('two');
        expect(t.connection()).toEqual({ epoch: 2, open: true });
      } finally {
        await rx2.close();
      }
    } finally {
      await t.close();
    }
  });
});

describe('syslog over TLS to a repository that stops reading', () => {
  it('gives up on the connection when writes are not accepted in time', async () => {
    const pki = makeTestPki();
    const sockets: TLSSocket[] = [];
    const server = createTlsServer({ cert: pki.serverCert, key: pki.serverKey }, (socket) => {
      socket.pause(); // accept the connection, never read from it
      sockets.push(socket);
    });
    // Every TCP connection, including one whose handshake has not finished when the test ends: server.close()
    // waits for all of them.
    const raw: Socket[] = [];
    server.on('connection', (c: Socket) => raw.push(c));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const t = new TlsSyslogTransport({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      ca: pki.ca,
      sendTimeoutMs: 300,
    });
    try {
      const big = Buffer.alloc(1024 * 1024, 0x41);
      await expect(t.send(Array.from({ length: 32 }, () => big))).rejects.toMatchObject({
        code: 'syslog.send-failed',
      });
      expect(t.connection().open).toBe(false);
    } finally {
      await t.close();
      for (const s of [...sockets, ...raw]) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('syslog over UDP (RFC 5426) to a loopback receiver', () => {
  let rx: Awaited<ReturnType<typeof startUdpReceiver>>;
  beforeAll(async () => {
    rx = await startUdpReceiver();
  });
  afterAll(async () => {
    await rx.close();
  });

  it('sends one DICOM audit message per datagram, unframed', async () => {
    const sink = new SyslogAuditSink(new UdpSyslogTransport({ host: '127.0.0.1', port: rx.port }));
    try {
      await sink.deliver([
        sampleRecord({ seq: 1, action: 'store' }),
        sampleRecord({ seq: 2, action: 'delete' }),
      ]);
      const got = await rx.waitFor(2);
      expect(got.map((m) => [m.pri, m.msgId, m.raw.toString('latin1').startsWith('<85>1 ')])).toEqual([
        [85, 'IHE+RFC-3881', true],
        [85, 'IHE+RFC-3881', true],
      ]);
      expect(got.map((m) => eventIdOf(m.msg))).toEqual(['110104', '110105']);
    } finally {
      await sink.close();
    }
  });

  it('truncates a message larger than the datagram limit (RFC 5426 §3.2) and counts it', async () => {
    const before = rx.messages.length;
    const t = new UdpSyslogTransport({ host: '127.0.0.1', port: rx.port, maxMessageBytes: 40 });
    try {
      await t.send([Buffer.from(`<85>1 2026-11-23T08:49:20Z h a - X - ${'y'.repeat(100)}`)]);
      const got = await rx.waitFor(before + 1);
      expect(got[before]!.raw.length).toBe(40);
      expect(t.truncated).toBe(1);
    } finally {
      await t.close();
    }
  });
});
