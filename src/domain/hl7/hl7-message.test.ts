import { describe, expect, it } from 'vitest';
import { buildAck } from './hl7-ack.js';
import { readFeedCommand } from './feed-commands.js';
import {
  adtMessage,
  changeIdMessage,
  mergeMessage,
  omiMessage,
  ormMessage,
  type ExamplePatient,
} from './hl7-examples.js';
import {
  Hl7Error,
  encodeMessage,
  encodeSegment,
  escapeHl7,
  parseHl7,
  peekHeader,
  unescapeHl7,
  value,
} from './hl7-message.js';

const adam = { id: 'PATID1234', family: 'EVERYMAN', given: 'ADAM', middle: 'A' };

function problemOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    if (err instanceof Hl7Error) return err.problem;
    throw err;
  }
  throw new Error('expected an Hl7Error');
}

describe('HL7 v2 parser', () => {
  it('reads the header, segments, repetitions and components of the v2.5.1 ADT^A01 example', () => {
    const msg = parseHl7(adtMessage('A01', 'MSG00001', adam));
    expect(msg.messageCode).toBe('ADT');
    expect(msg.triggerEvent).toBe('A01');
    expect(msg.messageStructure).toBe('ADT_A01');
    expect(msg.controlId).toBe('MSG00001');
    expect(msg.version).toBe('2.5.1');
    expect(msg.processingId).toBe('P');
    expect(msg.sendingApplication).toBe('ADT1');
    expect(msg.sendingFacility).toBe('GOOD HEALTH HOSPITAL');
    expect(msg.segments.map((s) => s.id)).toEqual(['MSH', 'EVN', 'PID', 'NK1', 'PV1']);
    const pid = msg.segment('PID')!;
    expect(value(pid, 3)).toBe('PATID1234');
    expect(value(pid, 3, 4)).toBe('GOOD HEALTH HOSPITAL');
    expect(value(pid, 3, 1, 1, 2)).toBe('123456789');
    expect(value(pid, 3, 5, 1, 2)).toBe('SS');
    expect(value(pid, 5, 2)).toBe('ADAM');
    expect(value(msg.msh, 1)).toBe('|');
    expect(value(msg.msh, 2)).toBe('^~\\&');
  });

  it('tolerates LF and CRLF segment terminators', () => {
    const text = adtMessage('A08', 'X1', adam);
    for (const variant of [text.replace(/\r/g, '\n'), text.replace(/\r/g, '\r\n')]) {
      const msg = parseHl7(variant);
      expect(msg.segments.map((s) => s.id)).toEqual(['MSH', 'EVN', 'PID', 'NK1', 'PV1']);
      expect(value(msg.segment('PID'), 5)).toBe('EVERYMAN');
    }
  });

  it('reads subcomponents and non-default encoding characters', () => {
    const msg = parseHl7('MSH#*@!%#A#B#C#D#20240101##ADT*A08#C1#P#2.5.1\rPID###ID1*1%2**AUTH##FAM*GIV\r');
    expect(msg.delimiters).toEqual({
      field: '#',
      component: '*',
      repetition: '@',
      escape: '!',
      subcomponent: '%',
    });
    expect(value(msg.segment('PID'), 3, 2, 2)).toBe('2');
    expect(value(msg.segment('PID'), 3, 4)).toBe('AUTH');
    expect(msg.triggerEvent).toBe('A08');
  });

  it('resolves escape sequences, including hexadecimal and formatting ones', () => {
    expect(unescapeHl7('A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\')).toBe('A|B^C&D~E\\');
    expect(unescapeHl7('caf\\XC3A9\\')).toBe('café');
    expect(unescapeHl7('\\X41\\\\XE9\\')).toBe('Aé');
    expect(unescapeHl7('line\\.br\\two\\H\\bold\\N\\')).toBe('line\ntwobold');
    expect(unescapeHl7('a\\.sp2\\b\\.sk 3\\c\\.ce\\d\\.in+4\\e\\.fi\\f')).toBe('a\n\nb   c\ndef');
    expect(unescapeHl7('open \\F')).toBe('open \\F');
    const msg = parseHl7(
      'MSH|^~\\&|A|B|C|D|20240101||ADT^A08|C1|P|2.5.1\rPID|||X1||O\\S\\BRIEN^ANN\\T\\MARY\r',
    );
    expect(value(msg.segment('PID'), 5)).toBe('O^BRIEN');
    expect(value(msg.segment('PID'), 5, 2)).toBe('ANN&MARY');
  });

  it('escapes text so that it parses back unchanged', () => {
    const text = 'a|b^c~d\\e&f\rg';
    const seg = encodeSegment('NTE', ['1', '', text]);
    const msg = parseHl7(encodeMessage(['MSH|^~\\&|A|B|C|D|1||ADT^A08|1|P|2.5.1', seg]));
    expect(value(msg.segment('NTE'), 3)).toBe(text);
    expect(escapeHl7('|')).toBe('\\F\\');
  });

  it('refuses a message that does not begin with MSH (segment sequence error)', () => {
    const p = problemOf(() => parseHl7('PID|||X\r'));
    expect(p.code).toBe(100);
    expect(p.message).toMatch(/must begin with an MSH segment/);
    expect(problemOf(() => parseHl7('')).code).toBe(100);
  });

  it('names a missing required MSH field', () => {
    const p = problemOf(() => parseHl7('MSH|^~\\&|A|B|C|D|20240101||ADT^A08||P|2.5.1\r'));
    expect(p.code).toBe(101);
    expect(p.location).toMatchObject({ segment: 'MSH', field: 10 });
    expect(p.message).toMatch(/MSH-10/);
  });

  it('refuses bad encoding characters and malformed segments', () => {
    expect(problemOf(() => parseHl7('MSH|^^\\&|A\r')).code).toBe(102);
    const p = problemOf(() => parseHl7('MSH|^~\\&|A|B|C|D|1||ADT^A08|1|P|2.5.1\rthis is not a segment\r'));
    expect(p.code).toBe(100);
  });

  it('refuses a second MSH: one frame is one message', () => {
    const p = problemOf(() =>
      parseHl7('MSH|^~\\&|A|B|C|D|1||ADT^A08|1|P|2.5.1\rPID|||X\rMSH|^~\\&|E|F|C|D|1||ADT^A08|2|P|2.5.1\r'),
    );
    expect(p).toMatchObject({ code: 100, location: { segment: 'MSH', sequence: 2 } });
  });

  it('peeks at MSH-10 as text, so the ACK echoes it escaped once', () => {
    const h = peekHeader('MSH|^~\\&|APP|FAC|CUSTOS|RAD|1||ADT^A08|A\\F\\B\\E\\C|P|2.5.1\r');
    expect(h.controlId).toBe('A|B\\C');
    const ack = buildAck({
      request: h,
      code: 'AA',
      controlId: 'X',
      now: new Date(0),
      self: { application: 'S', facility: 'F' },
    });
    expect(ack.split('\r')[1]).toBe('MSA|AA|A\\F\\B\\E\\C');
  });

  it('peeks at the header of a message that does not parse', () => {
    const h = peekHeader('MSH|^~\\&|APP|FAC|CUSTOS|RAD|1||ZZZ^Z01|CTRL9|P|2.5.1\rgarbage');
    expect(h).toMatchObject({
      sendingApplication: 'APP',
      sendingFacility: 'FAC',
      controlId: 'CTRL9',
      messageCode: 'ZZZ',
    });
  });
});

describe('ACK', () => {
  const request = {
    sendingApplication: 'ADT1',
    sendingFacility: 'GOOD HEALTH HOSPITAL',
    receivingApplication: 'CUSTOS',
    receivingFacility: 'RADIOLOGY',
    controlId: 'MSG00001',
    processingId: 'P',
    version: '2.5.1',
    triggerEvent: 'A01',
  };
  const self = { application: 'CUSTOS', facility: 'CUSTOS' };
  const now = new Date('2026-11-23T10:00:00Z');

  it('accepts with MSA AA addressed back to the sender', () => {
    const ack = parseHl7(buildAck({ request, code: 'AA', controlId: 'C1', now, self }));
    expect(ack.messageCode).toBe('ACK');
    expect(ack.triggerEvent).toBe('A01');
    expect(ack.receivingApplication).toBe('ADT1');
    expect(ack.receivingFacility).toBe('GOOD HEALTH HOSPITAL');
    expect(ack.sendingApplication).toBe('CUSTOS');
    expect(value(ack.msh, 7)).toBe('20261123100000+0000');
    expect(value(ack.segment('MSA'), 1)).toBe('AA');
    expect(value(ack.segment('MSA'), 2)).toBe('MSG00001');
    expect(ack.segment('ERR')).toBeUndefined();
    expect(ack.processingId).toBe('P');
  });

  it("answers with the message's own processing id (T, D), and P for one it does not know", () => {
    const processingOf = (processingId: string) =>
      parseHl7(buildAck({ request: { ...request, processingId }, code: 'AR', controlId: 'C3', now, self }))
        .processingId;
    expect(processingOf('T')).toBe('T');
    expect(processingOf('D')).toBe('D');
    expect(processingOf('X')).toBe('P');
    expect(processingOf('')).toBe('P');
  });

  it('reports each problem in an ERR segment with location, table 0357 code, severity and user message', () => {
    const text = buildAck({
      request,
      code: 'AE',
      controlId: 'C2',
      now,
      self,
      problems: [
        {
          code: 101,
          message: 'PID-3 (patient identifier list) is required and empty',
          location: { segment: 'PID', sequence: 1, field: 3 },
        },
      ],
    });
    const ack = parseHl7(text);
    const err = ack.segment('ERR')!;
    expect(value(ack.segment('MSA'), 1)).toBe('AE');
    expect(value(err, 2, 1)).toBe('PID');
    expect(value(err, 2, 2)).toBe('1');
    expect(value(err, 2, 3)).toBe('3');
    expect(value(err, 3, 1)).toBe('101');
    expect(value(err, 3, 2)).toBe('Required field missing');
    expect(value(err, 3, 3)).toBe('HL70357');
    expect(value(err, 4)).toBe('E');
    expect(value(err, 8)).toBe('PID-3 (patient identifier list) is required and empty');
    // ERR-1 and MSA-6 are v2.5's backward-compatibility fields: left empty in an ACK of v2.5 or later.
    expect(value(err, 1)).toBe('');
    expect(value(ack.segment('MSA'), 6)).toBe('');
  });

  it('puts the error code and its place in MSA-6 and ERR-1 for a message of a version before 2.5 (2.3, 2.4)', () => {
    // Until 8 Dec 2026 they were only in ERR-2 and ERR-3, fields a v2.3 or v2.4 sender's version does not have.
    const problem = {
      code: 101,
      message: 'PID-3 (patient identifier list) is required and empty',
      location: { segment: 'PID', sequence: 1, field: 3 },
    } as const;
    for (const version of ['2.3', '2.3.1', '2.4']) {
      const text = buildAck({
        request: { ...request, version },
        code: 'AE',
        controlId: 'C4',
        now,
        self,
        problems: [problem, { code: 207, message: 'no place' }],
      });
      const ack = parseHl7(text);
      expect(ack.version).toBe(version);
      expect(text.split('\r')[1]).toBe(
        'MSA|AE|MSG00001|PID-3 (patient identifier list) is required and empty|||101^Required field missing^HL70357',
      );
      const [first, second] = ack.all('ERR');
      expect(text.split('\r')[2]).toMatch(
        /^ERR\|PID\^1\^3\^101&Required field missing&HL70357\|PID\^1\^3\^1\^*\|101\^/,
      );
      expect(value(first, 1, 4, 1)).toBe('101');
      expect(value(first, 8)).toBe(problem.message);
      expect(text.split('\r')[3]).toMatch(/^ERR\|\^\^\^207&Application internal error&HL70357\|\|207\^/);
      expect(value(second, 1, 4, 1)).toBe('207');
    }
  });
});

describe('feed commands', () => {
  it('reads ADT^A01 demographics as DICOM values', () => {
    const cmd = readFeedCommand(parseHl7(adtMessage('A01', '1', adam)));
    expect(cmd).toEqual({
      kind: 'patient-update',
      event: 'A01',
      patients: [
        {
          patientId: 'PATID1234',
          issuer: 'GOOD HEALTH HOSPITAL',
          name: 'EVERYMAN^ADAM^A^^III',
          birthDate: '19610615',
          sex: 'M',
        },
      ],
    });
  });

  it('keeps fields the message leaves empty and clears fields sent as ""', () => {
    const text = adtMessage('A08', '1', adam).replace('|19610615|M|', '||""|');
    const cmd = readFeedCommand(parseHl7(text));
    if (cmd.kind !== 'patient-update') throw new Error('expected an update');
    expect(cmd.patients[0]).not.toHaveProperty('birthDate');
    expect(cmd.patients[0]!.sex).toBe('');
  });

  it('reads A04 and A08 the same way', () => {
    for (const e of ['A04', 'A08'] as const) {
      const cmd = readFeedCommand(parseHl7(adtMessage(e, '1', { ...adam, family: 'NEWNAME', sex: 'F' })));
      expect(cmd.kind).toBe('patient-update');
      if (cmd.kind === 'patient-update')
        expect(cmd.patients[0]).toMatchObject({ name: 'NEWNAME^ADAM^A^^III', sex: 'F' });
    }
  });

  it('reads the A40 merge: surviving PID-3 and merged MRG-1', () => {
    const cmd = readFeedCommand(
      parseHl7(mergeMessage('3', { id: 'MR1', family: 'MAIDENNAME', given: 'EVE' }, 'MR2')),
    );
    expect(cmd).toEqual({
      kind: 'patient-merge',
      event: 'A40',
      merges: [
        {
          surviving: { patientId: 'MR1', issuer: 'XYZ', name: 'MAIDENNAME^EVE' },
          merged: [{ patientId: 'MR2', issuer: 'XYZ' }],
        },
      ],
    });
  });

  it('reads every identifier of MRG-1 (the prior patient), MR first, and checks each repetition', () => {
    const merge = mergeMessage('3', { id: 'MR1', family: 'X', given: 'Y' }, 'MR2');
    const withMrg1 = (list: string) => parseHl7(merge.replace(/^MRG\|[^\r]*/m, `MRG|${list}`));
    const cmd = readFeedCommand(withMrg1('SS9^^^USSSA^SS~MR2^^^XYZ^MR~MR2^^^XYZ^MR~MR3^^^OTHER^PI'));
    expect(cmd.kind === 'patient-merge' && cmd.merges[0]!.merged).toEqual([
      { patientId: 'MR2', issuer: 'XYZ' },
      { patientId: 'SS9', issuer: 'USSSA' },
      { patientId: 'MR3', issuer: 'OTHER' },
    ]);
    const bad = problemOf(() => readFeedCommand(withMrg1('MR2^^^XYZ^MR~MR\\E\\3^^^OTHER^PI')));
    expect(bad).toMatchObject({
      code: 102,
      location: { segment: 'MRG', field: 1, repetition: 2, component: 1 },
    });
    expect(bad.message).toMatch(/^MRG-1\[2\]\.1 \(prior patient identifier list\) holds a backslash/);
    expect(problemOf(() => readFeedCommand(withMrg1('MR2^^^XYZ^MR~^^^OTHER^PI')))).toMatchObject({
      code: 101,
      location: { segment: 'MRG', field: 1, repetition: 2, component: 1 },
    });
  });

  it('reads the A47 identifier change', () => {
    const cmd = readFeedCommand(
      parseHl7(changeIdMessage('31', { id: 'MR1', family: 'EVERYMAN', given: 'ADAM' }, 'MR2')),
    );
    expect(cmd).toMatchObject({
      kind: 'identifier-change',
      changes: [{ to: { patientId: 'MR1' }, from: { patientId: 'MR2' } }],
    });
  });

  it('rejects a v2.3/v2.3.1 A46 that changes only PID-2 (MRG-4, no MRG-1), and reads one with MRG-1 as an A47', () => {
    const a46 = (version: string, pid: string, mrg: string) =>
      parseHl7(
        [
          `MSH|^~\\&|REGADT|MCM|CUSTOS|RADIOLOGY|19990105153000||ADT^A46|1|P|${version}`,
          'EVN|A46|199901051530',
          pid,
          mrg,
        ].join('\r'),
      );
    for (const version of ['2.3', '2.3.1'])
      expect(
        problemOf(() => readFeedCommand(a46(version, 'PID|1|NEW^^^XYZ|||DOE^JO', 'MRG||||OLD^^^XYZ'))),
      ).toMatchObject({ code: 201, location: { segment: 'MRG', field: 4 } });
    expect(
      readFeedCommand(a46('2.3', 'PID|1|NEW^^^XYZ|MR1^^^XYZ', 'MRG|MR2^^^XYZ|||OLD^^^XYZ')),
    ).toMatchObject({ changes: [{ to: { patientId: 'MR1' }, from: { patientId: 'MR2' } }] });
    expect(
      problemOf(() => readFeedCommand(a46('2.5.1', 'PID|1|NEW^^^XYZ|||DOE^JO', 'MRG||||OLD^^^XYZ'))),
    ).toMatchObject({ code: 101, location: { segment: 'MRG', field: 1 } });
  });

  it('reads ORM^O01: order numbers, accession (OBR-18), procedure, physicians and department', () => {
    const cmd = readFeedCommand(
      parseHl7(
        ormMessage(
          '1',
          { id: '1234567', family: 'EVERYWOMAN', given: 'EVE' },
          {
            placer: '9968',
            filler: 'F100',
            accession: 'ACC42',
            procedure: ['71020', 'CHEST PA AND LATERAL'],
            ordering: ['4567', 'ORDERING', 'OTTO'],
            referring: ['7890', 'REFER', 'RITA'],
            service: 'CAR',
          },
        ),
      ),
    );
    expect(cmd.kind).toBe('order');
    if (cmd.kind !== 'order') return;
    expect(cmd.orders).toHaveLength(1);
    expect(cmd.orders[0]).toMatchObject({
      orderControl: 'NW',
      placerOrderNumber: '9968',
      fillerOrderNumber: 'F100',
      accessionNumber: 'ACC42',
      status: 'scheduled',
      procedureCode: '71020',
      procedureText: 'CHEST PA AND LATERAL',
      department: 'CAR',
      orderingPhysician: [{ id: '4567', name: 'ORDERING^OTTO' }],
      referringPhysician: [{ id: '7890', name: 'REFER^RITA' }],
      patient: { patientId: '1234567', issuer: 'MCM' },
    });
  });

  it('reads OMI^O23 with ORC, TQ1, OBR and IPC', () => {
    const cmd = readFeedCommand(
      parseHl7(
        omiMessage(
          '5',
          { id: 'PAT001', family: 'DOE', given: 'JOHN' },
          {
            placer: 'PL123',
            filler: 'FL456',
            accession: 'ACC789',
            procedure: ['CTHEAD', 'CT HEAD W/O CONTRAST'],
            ordering: ['9012', 'ORDER', 'OSCAR'],
            referring: ['5678', 'REFER', 'RITA'],
            studyUid: '1.2.3.4.5.6',
            modality: 'CT',
          },
        ),
      ),
    );
    if (cmd.kind !== 'order') throw new Error('expected an order');
    expect(cmd.event).toBe('OMI^O23');
    expect(cmd.orders[0]).toMatchObject({
      accessionNumber: 'ACC789',
      studyInstanceUid: '1.2.3.4.5.6',
      modality: 'CT',
      department: 'RAD',
      orderingPhysician: [{ id: '9012', name: 'ORDER^OSCAR' }],
      procedureCode: 'CTHEAD',
    });
  });

  it('names what is wrong: missing PID-3, unknown sex, unsupported type and event, missing MRG', () => {
    const noId = adtMessage('A01', '1', adam).replace(/PID\|1\|\|[^|]*\|/, 'PID|1|||');
    expect(problemOf(() => readFeedCommand(parseHl7(noId)))).toMatchObject({
      code: 101,
      location: { segment: 'PID', field: 3 },
    });
    const badSex = adtMessage('A01', '1', { ...adam, sex: 'Q' });
    expect(problemOf(() => readFeedCommand(parseHl7(badSex)))).toMatchObject({ code: 103 });
    const badDate = adtMessage('A01', '1', { ...adam, birth: 'yesterday' });
    expect(problemOf(() => readFeedCommand(parseHl7(badDate)))).toMatchObject({ code: 102 });
    const zzz = 'MSH|^~\\&|A|B|C|D|1||ZZZ^Z99|1|P|2.5.1\r';
    expect(problemOf(() => readFeedCommand(parseHl7(zzz)))).toMatchObject({ code: 200 });
    const a03 = adtMessage('A01', '1', adam).replace('ADT^A01', 'ADT^A03');
    expect(problemOf(() => readFeedCommand(parseHl7(a03)))).toMatchObject({ code: 201 });
    const noMrg = mergeMessage('1', { id: 'MR1', family: 'X', given: 'Y' }, 'MR2').replace(/MRG[^\r]*\r/, '');
    expect(problemOf(() => readFeedCommand(parseHl7(noMrg)))).toMatchObject({
      code: 100,
      location: { segment: 'MRG' },
    });
  });

  it('refuses a PID-7 birth date that is not a valid DTM (102) and reads valid ones', () => {
    for (const [birth, why] of [
      ['20241345', /no month 13/],
      ['20240230', /2024-02 has no day 30/],
      ['20230229', /2023-02 has no day 29/],
      ['abc', /does not have that form/],
      ['1961061', /does not have that form/],
      ['19610615xyz', /does not have that form/],
      ['196106152500', /no hour 25/],
    ] as const) {
      const problem = problemOf(() => readFeedCommand(parseHl7(adtMessage('A08', '1', { ...adam, birth }))));
      expect(problem, birth).toMatchObject({ code: 102, location: { segment: 'PID', field: 7 } });
      expect(problem.message, birth).toMatch(why);
    }
    for (const [birth, stored] of [
      ['20240229', '20240229'],
      ['196106151230-0500', '19610615'],
      ['19610615123045.12+0100', '19610615'],
      ['196106', ''],
      ['1961', ''],
    ] as const) {
      const cmd = readFeedCommand(parseHl7(adtMessage('A08', '1', { ...adam, birth })));
      expect(cmd.kind === 'patient-update' ? cmd.patients[0]?.birthDate : undefined, birth).toBe(stored);
    }
  });

  it('refuses PID text that DICOM cannot hold: a backslash, a control character, a PN delimiter, over 64 characters (102)', () => {
    const cases: [Partial<ExamplePatient>, RegExp, number, number][] = [
      [{ family: 'O\\E\\BRIEN' }, /PID-5\.1 .* backslash .* PatientName \(PN\)/, 5, 1],
      [{ given: 'ANN\\X09\\MARY' }, /PID-5\.2 .* control character U\+0009/, 5, 2],
      [{ family: 'SMITH\\S\\JONES' }, /PID-5\.1 .* holds '\^', a DICOM PN delimiter/, 5, 1],
      [{ given: 'A=B' }, /PID-5\.2 .* holds '=', a DICOM PN delimiter/, 5, 2],
      [{ family: 'F'.repeat(65) }, /PID-5\.1 .* 65 characters/, 5, 1],
      [
        { family: 'F'.repeat(40), given: 'G'.repeat(30) },
        /PID-5 \(patient name\) is 78 characters as a name/,
        5,
        0,
      ],
      [{ id: 'ID\\E\\1' }, /PID-3\.1 .* backslash .* PatientID \(LO\)/, 3, 1],
      [{ id: 'I'.repeat(65) }, /PID-3\.1 .* 65 characters/, 3, 1],
      [{ authority: 'AUTH\\X0A\\X' }, /PID-3\.4 .* control character U\+000a, .* IssuerOfPatientID/, 3, 4],
    ];
    for (const [change, why, field, component] of cases) {
      const problem = problemOf(() =>
        readFeedCommand(parseHl7(adtMessage('A08', '1', { ...adam, ...change }))),
      );
      expect(problem, why.source).toMatchObject({
        code: 102,
        location: { segment: 'PID', field, ...(component ? { component } : {}) },
      });
      expect(problem.message).toMatch(why);
    }
    // Escapes that read back as text DICOM holds are fine: \T\ is '&', a character like any other in PN.
    const cmd = readFeedCommand(parseHl7(adtMessage('A08', '1', { ...adam, family: 'SMITH\\T\\SONS' })));
    expect(cmd.kind === 'patient-update' ? cmd.patients[0]?.name : undefined).toBe('SMITH&SONS^ADAM^A^^III');
  });

  it('refuses a second PID where the message structure holds one, and a PID without its MRG in A40 (100)', () => {
    const pidOf = (m: string) => m.split('\r').find((l) => l.startsWith('PID'))!;
    const other = pidOf(adtMessage('A08', '1', { ...adam, id: 'OTHER' }));
    const twoPids = adtMessage('A08', '1', adam).replace(/(PID[^\r]*\r)/, `$1${other}\r`);
    expect(problemOf(() => readFeedCommand(parseHl7(twoPids)))).toMatchObject({
      code: 100,
      location: { segment: 'PID', sequence: 2 },
    });
    const order = ormMessage('1', adam, {
      placer: 'P1',
      filler: 'F1',
      accession: 'A1',
      procedure: ['71020', 'CHEST'],
      ordering: ['1', 'ORDER', 'OTTO'],
      referring: ['2', 'REFER', 'RITA'],
    });
    const twoPidOrder = order.replace(/(PID[^\r]*\r)/, `$1${other}\r`);
    expect(problemOf(() => readFeedCommand(parseHl7(twoPidOrder)))).toMatchObject({ code: 100 });
    const merge = mergeMessage('1', { id: 'MR1', family: 'X', given: 'Y' }, 'MR2');
    const pidPidMrg = merge.replace(/(PID[^\r]*\r)/, `$1${other}\r`);
    expect(problemOf(() => readFeedCommand(parseHl7(pidPidMrg)))).toMatchObject({
      code: 100,
      location: { segment: 'PID', sequence: 1 },
    });
    const trailingPid = `${merge}${other}\r`;
    expect(problemOf(() => readFeedCommand(parseHl7(trailingPid)))).toMatchObject({
      code: 100,
      location: { segment: 'PID', sequence: 2 },
    });
    // A40 repeats its PATIENT group: two PID/MRG pairs are two merges.
    const twoMerges = `${merge}PID|||MR3^^^XYZ^MR\rMRG|MR4^^^XYZ^MR\r`;
    const cmd = readFeedCommand(parseHl7(twoMerges));
    expect(cmd.kind === 'patient-merge' ? cmd.merges.length : 0).toBe(2);
    // A47 (ADT_A30) holds one PID and one MRG.
    const change = changeIdMessage('1', { id: 'MR1', family: 'X', given: 'Y' }, 'MR2');
    expect(
      problemOf(() => readFeedCommand(parseHl7(`${change}PID|||MR3^^^XYZ^MR\rMRG|MR4^^^XYZ^MR\r`))),
    ).toMatchObject({ code: 100, location: { segment: 'PID', sequence: 2 } });
  });
});
