/**
 * DIMSE command sets (PS3.7 §9.3, §10.3, Annex E): group 0000, always implicit VR little endian. Command
 * elements come from a fixed, short list with known VRs, so they are coded here directly rather than through the
 * general dataset parser (which serves the identifiers and data sets that follow them).
 */
import { PduError } from './pdu.js';

export const Cmd = {
  CStoreRq: 0x0001,
  CStoreRsp: 0x8001,
  CGetRq: 0x0010,
  CGetRsp: 0x8010,
  CFindRq: 0x0020,
  CFindRsp: 0x8020,
  CMoveRq: 0x0021,
  CMoveRsp: 0x8021,
  CEchoRq: 0x0030,
  CEchoRsp: 0x8030,
  NEventReportRq: 0x0100,
  NEventReportRsp: 0x8100,
  NActionRq: 0x0130,
  NActionRsp: 0x8130,
  CCancelRq: 0x0fff,
} as const;

/** PS3.7 §E.1 Command Data Set Type: this value means "no data set". */
export const NO_DATASET = 0x0101;

export interface Command {
  affectedSopClassUid?: string;
  requestedSopClassUid?: string;
  commandField: number;
  messageId?: number;
  messageIdBeingRespondedTo?: number;
  moveDestination?: string;
  priority?: number;
  commandDataSetType: number;
  status?: number;
  errorComment?: string;
  offendingElement?: number[];
  affectedSopInstanceUid?: string;
  requestedSopInstanceUid?: string;
  eventTypeId?: number;
  actionTypeId?: number;
  remaining?: number;
  completed?: number;
  failed?: number;
  warning?: number;
  moveOriginatorAe?: string;
  moveOriginatorMessageId?: number;
}

type Vr = 'UI' | 'US' | 'UL' | 'AE' | 'LO' | 'AT';
const FIELDS: [number, keyof Command, Vr][] = [
  [0x0002, 'affectedSopClassUid', 'UI'],
  [0x0003, 'requestedSopClassUid', 'UI'],
  [0x0100, 'commandField', 'US'],
  [0x0110, 'messageId', 'US'],
  [0x0120, 'messageIdBeingRespondedTo', 'US'],
  [0x0600, 'moveDestination', 'AE'],
  [0x0700, 'priority', 'US'],
  [0x0800, 'commandDataSetType', 'US'],
  [0x0900, 'status', 'US'],
  [0x0901, 'offendingElement', 'AT'],
  [0x0902, 'errorComment', 'LO'],
  [0x1000, 'affectedSopInstanceUid', 'UI'],
  [0x1001, 'requestedSopInstanceUid', 'UI'],
  [0x1002, 'eventTypeId', 'US'],
  [0x1008, 'actionTypeId', 'US'],
  [0x1020, 'remaining', 'US'],
  [0x1021, 'completed', 'US'],
  [0x1022, 'failed', 'US'],
  [0x1023, 'warning', 'US'],
  [0x1030, 'moveOriginatorAe', 'AE'],
  [0x1031, 'moveOriginatorMessageId', 'US'],
];
const BY_ELEMENT = new Map(FIELDS.map((f) => [f[0], f]));

export function encodeCommand(cmd: Command): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  for (const [element, key, vr] of FIELDS) {
    const v = cmd[key];
    if (v === undefined) continue;
    let value: Buffer;
    if (vr === 'US') {
      value = Buffer.alloc(2);
      value.writeUInt16LE(Number(v) & 0xffff);
    } else if (vr === 'UL') {
      value = Buffer.alloc(4);
      value.writeUInt32LE(Number(v) >>> 0);
    } else if (vr === 'AT') {
      const tags = v as number[];
      value = Buffer.alloc(tags.length * 4);
      tags.forEach((t, i) => {
        value.writeUInt16LE(t >>> 16, i * 4);
        value.writeUInt16LE(t & 0xffff, i * 4 + 2);
      });
    } else {
      let s = String(v);
      if (vr === 'AE') s = s.padEnd(16, ' ').slice(0, 16);
      value = Buffer.from(s, 'latin1');
      if (value.length % 2) value = Buffer.concat([value, Buffer.from([vr === 'UI' ? 0 : 0x20])]);
    }
    const head = Buffer.alloc(8);
    head.writeUInt16LE(0x0000, 0);
    head.writeUInt16LE(element, 2);
    head.writeUInt32LE(value.length, 4);
    parts.push(head, value);
    total += 8 + value.length;
  }
  const group = Buffer.alloc(12);
  group.writeUInt32LE(0x00000000, 0);
  group.writeUInt32LE(4, 4);
  group.writeUInt32LE(total, 8);
  return Buffer.concat([group, ...parts]);
}

export function decodeCommand(b: Buffer): Command {
  const cmd: Partial<Command> = {};
  let o = 0;
  while (o < b.length) {
    if (o + 8 > b.length) throw new PduError('the DIMSE command set is truncated');
    const group = b.readUInt16LE(o);
    const element = b.readUInt16LE(o + 2);
    const len = b.readUInt32LE(o + 4);
    if (group !== 0 || o + 8 + len > b.length)
      throw new PduError('the DIMSE command set has an element outside group 0000 or overrunning it');
    const at = o + 8;
    o = at + len;
    const field = BY_ELEMENT.get(element);
    if (!field) continue; // retired or unknown command elements (e.g. 0000,0000 group length) are ignored
    const [, key, vr] = field;
    const rec = cmd as Record<string, unknown>;
    // Values are read where they lie: every message, each pending C-FIND answer among them, is decoded here.
    if (len < (vr === 'US' ? 2 : vr === 'UL' ? 4 : 0))
      throw new PduError(`command element (0000,${element.toString(16)}) is too short`);
    if (vr === 'US') rec[key] = b.readUInt16LE(at);
    else if (vr === 'UL') rec[key] = b.readUInt32LE(at);
    else if (vr === 'AT') {
      const tags: number[] = [];
      for (let i = 0; i + 4 <= len; i += 4)
        tags.push(((b.readUInt16LE(at + i) << 16) | b.readUInt16LE(at + i + 2)) >>> 0);
      rec[key] = tags;
    } else
      rec[key] = b
        .toString('latin1', at, o)
        .replace(/[\0 ]+$/, '')
        .trim();
  }
  if (cmd.commandField === undefined)
    throw new PduError('the DIMSE command set has no Command Field (0000,0100)');
  if (cmd.commandDataSetType === undefined)
    throw new PduError('the DIMSE command set has no Command Data Set Type (0000,0800)');
  return cmd as Command;
}

export const hasDataset = (c: Command) => c.commandDataSetType !== NO_DATASET;
