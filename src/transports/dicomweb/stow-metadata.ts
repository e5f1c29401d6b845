/**
 * STOW-RS metadata and bulk data (PS3.18 §10.5.1, Annex F): `multipart/related; type="application/dicom+json"`
 * whose metadata part holds the DICOM JSON of one or more instances, and whose other parts carry the bulk data
 * their BulkDataURIs name by Content-Location. Each instance is assembled as a Part 10 object (file meta information
 * and data set) and fed to the one ingest pipeline, as an application/dicom part is.
 *
 * What is held where: metadata parts in memory, at most `limits.maxHeaderBytes` together; bulk data parts spooled
 * to the request's spool, encrypted (ports/bulk-spool.ts: one file each under the process's spool directory in
 * `<dataDir>/tmp/`; they may come after the metadata and in any order), at most
 * `limits.maxInstanceBytes` each, removed when the request ends, whatever its outcome. Bulk data inside a sequence
 * item (an icon image) is read into memory to write its item, within the same `maxHeaderBytes`.
 */
import { CustosError, DicomStatus } from '../../domain/errors.js';
import type { BulkSpools, RequestSpool, SpooledBytes } from '../../ports/bulk-spool.js';
import { jsonToWriteElements, MAX_JSON_DEPTH, tagPathLabel } from '../../dicom/dicom-json.js';
import { readNativeDicomXml } from '../../dicom/dicom-xml-reader.js';
import {
  inUtf8,
  isExternal,
  part10Pieces,
  type ExternalValue,
  type Part10Piece,
  type WriteElement,
  type WriteValue,
} from '../../dicom/part10-writer.js';
import { Tags, TransferSyntax } from '../../dicom/tags.js';
import { isNativeTransferSyntax, transferSyntaxEncoding } from '../../dicom/transfer-syntax.js';
import type { MultipartPart } from '../http/multipart-reader.js';
import { partHead } from './stow-part.js';

export interface MetadataLimits {
  /** Where bulk data parts wait, one spool per request, removed afterwards (adapters/fs-blob/bulk-spool.ts). */
  spools: BulkSpools;
  /** Most bytes of metadata (all metadata parts together) held in memory. */
  maxMetadataBytes: number;
  /** Most bytes of one bulk data part (an instance can be no larger). */
  maxBulkBytes: number;
  /** The free-space reserve, checked before a part is spooled (the ingest checks it again per object). */
  ensureRoom?: () => Promise<void>;
}

/** A part refused on its own: FailureReason, the Warning text, the code for the ledger. */
export interface PartRefusal {
  partNo: number;
  reason: number;
  text: string;
  code: string;
}

interface BulkPart {
  partNo: number;
  location: string;
  length: number;
  mediaType: string;
  transferSyntax: string | undefined;
  referenced: boolean;
  /** Over `maxBulkBytes`: its bytes were not kept. */
  tooLarge: boolean;
  /** Why its bytes were not kept when there was no room for them (below the free-space reserve). */
  noRoom?: CustosError;
  /** Its bytes as kept in the request's spool. */
  bytes?: SpooledBytes;
}

/** One instance as the metadata gave it: where it is (`instance N`), and its JSON. */
export interface MetadataInstance {
  label: string;
  json: unknown;
  /** Why it cannot be read at all (the metadata part is not JSON). */
  error?: CustosError;
}

/** Names of UTF-8 a metadata part's charset parameter may give: the IANA name and the DICOM Defined Term. */
const UTF8_NAMES = new Set(['utf-8', 'iso_ir 192']);

const refuse = (code: string, message: string, dicomStatus: number) =>
  new CustosError({ code, message, httpStatus: 400, dicomStatus });

/** The parts of one metadata-and-bulk-data request, bulk data on disk: `close` removes the spool. */
export class MetadataRequest {
  readonly instances: MetadataInstance[] = [];
  readonly refused: PartRefusal[] = [];
  private readonly bulk = new Map<string, BulkPart>();
  private metadataBytes = 0;
  private spooled: RequestSpool | undefined;

  constructor(private readonly limits: MetadataLimits) {}

  /** Reads one part: metadata into memory, bulk data to the spool. Read every part before assembling any instance. */
  async add(part: MultipartPart, partNo: number, rootType: string): Promise<void> {
    const drain = async () => {
      for await (const _ of part.body) void _;
    };
    const refusal = (reason: number, code: string, text: string) => {
      this.refused.push({ partNo, reason, code, text: `part ${partNo}: ${text}` });
    };
    const head = partHead(part, partNo, rootType);
    if ('refused' in head) {
      await drain();
      this.refused.push({ partNo, ...head.refused });
      return;
    }
    const { type, params } = head;
    if (type === 'application/dicom+json' || type === 'application/dicom+xml') {
      // DICOM JSON is UTF-8 (PS3.18 F.2, RFC 8259 §8.1), and Custos reads DICOM XML metadata in UTF-8 too. A part
      // that names another charset is refused, not read as UTF-8 regardless (until 7 Dec 2026 the parameter was
      // ignored: Latin-1 text either failed as "not UTF-8" or, when its bytes happened to be valid UTF-8, was
      // stored as other characters). The charset may be named as in PS3.18 §8.8, IANA or DICOM Defined Term.
      const charset = params.charset;
      if (charset !== undefined && !UTF8_NAMES.has(charset.toLowerCase())) {
        await drain();
        return refusal(
          DicomStatus.CannotUnderstand,
          'stow.unsupported-charset',
          `the metadata is ${type}; charset=${charset.slice(0, 40)}, but Custos reads metadata only in UTF-8 (PS3.18 section F.2, RFC 8259): send it as UTF-8, with charset=utf-8 or no charset`,
        );
      }
      return this.addMetadata(part, partNo, type);
    }
    if (type === 'application/dicom') {
      await drain();
      return refusal(
        DicomStatus.SopClassNotSupported,
        'stow.unsupported-media-type',
        `media type ${type} in a request of type ${rootType}: send Part 10 objects as multipart/related; type="application/dicom"`,
      );
    }
    const location = part.headers['content-location'];
    if (!location) {
      await drain();
      return refusal(
        DicomStatus.CannotUnderstand,
        'stow.bulk-data-unnamed',
        `bulk data part (${type}) has no Content-Location, so no BulkDataURI can refer to it`,
      );
    }
    if (this.bulk.has(location)) {
      await drain();
      return refusal(
        DicomStatus.CannotUnderstand,
        'stow.bulk-data-duplicate',
        `Content-Location '${location.slice(0, 200)}' is also that of part ${this.bulk.get(location)!.partNo}: the BulkDataURI would be ambiguous`,
      );
    }
    try {
      await this.limits.ensureRoom?.();
    } catch (e) {
      if (!(e instanceof CustosError)) throw e;
      // As the ingest would refuse each object: the instances that need this part fail with the reason (A700).
      this.bulk.set(location, {
        partNo,
        location,
        length: 0,
        mediaType: type,
        transferSyntax: undefined,
        referenced: false,
        tooLarge: false,
        noRoom: e,
      });
      await drain();
      return;
    }
    await this.spool(part, partNo, location, type, params['transfer-syntax']);
  }

  private async addMetadata(
    part: MultipartPart,
    partNo: number,
    type: 'application/dicom+json' | 'application/dicom+xml',
  ): Promise<void> {
    const chunks: Buffer[] = [];
    let over = false;
    for await (const chunk of part.body) {
      this.metadataBytes += chunk.length;
      if (this.metadataBytes > this.limits.maxMetadataBytes) over = true;
      if (!over) chunks.push(chunk);
    }
    if (over) {
      this.refused.push({
        partNo,
        reason: DicomStatus.OutOfResources,
        code: 'stow.metadata-too-large',
        text: `part ${partNo}: the metadata parts exceed ${this.limits.maxMetadataBytes} bytes together (limits.maxHeaderBytes): send fewer instances per request`,
      });
      return;
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
    } catch {
      this.instances.push({
        label: `part ${partNo}`,
        json: undefined,
        error: refuse('stow.bad-metadata', 'the metadata is not UTF-8', DicomStatus.CannotUnderstand),
      });
      return;
    }
    if (type === 'application/dicom+xml') {
      // PS3.18 §10.5.1: one XML metadata part per instance.
      try {
        this.instances.push({ label: `part ${partNo}`, json: readNativeDicomXml(text) });
      } catch (e) {
        if (!(e instanceof CustosError)) throw e;
        this.instances.push({ label: `part ${partNo}`, json: undefined, error: e });
      }
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      this.instances.push({
        label: `part ${partNo}`,
        json: undefined,
        error: refuse(
          'stow.bad-metadata',
          `the metadata is not UTF-8 JSON (PS3.18 F.2): ${why.slice(0, 200)}`,
          DicomStatus.CannotUnderstand,
        ),
      });
      return;
    }
    // PS3.18 F.2: the metadata is an array of data sets; a single object is taken as one.
    const list = Array.isArray(json) ? json : [json];
    if (list.length === 0)
      this.refused.push({
        partNo,
        reason: DicomStatus.CannotUnderstand,
        code: 'stow.bad-metadata',
        text: `part ${partNo}: the metadata is an empty array: no instance to store`,
      });
    list.forEach((ds, i) => this.instances.push({ label: `part ${partNo} instance ${i + 1}`, json: ds }));
  }

  private async spool(
    part: MultipartPart,
    partNo: number,
    location: string,
    mediaType: string,
    transferSyntax: string | undefined,
  ): Promise<void> {
    const entry: BulkPart = {
      partNo,
      location,
      length: 0,
      mediaType,
      transferSyntax,
      referenced: false,
      tooLarge: false,
    };
    this.bulk.set(location, entry);
    this.spooled ??= this.limits.spools.open();
    // A write that fails is the adapter's 507 stow.spool-failed; a body cut short is the multipart reader's error.
    entry.bytes = await this.spooled.keep(String(partNo), part.body, this.limits.maxBulkBytes);
    entry.length = entry.bytes.length;
    entry.tooLarge = entry.bytes.tooLarge;
  }

  /**
   * The instance as Part 10 pieces, bulk data still on disk; throws a CustosError with the FailureReason when it
   * cannot be assembled.
   */
  async assemble(instance: MetadataInstance): Promise<Part10Piece[]> {
    if (instance.error) throw instance.error;
    const pixel: { part?: BulkPart } = {};
    const resolve = (uri: string, tagPath: number[], vr: string): WriteValue => {
      const part = this.bulk.get(uri);
      const at = tagPathLabel(tagPath);
      if (!part)
        throw refuse(
          'stow.bulk-data-missing',
          `${at} (${vr}) has BulkDataURI '${uri.slice(0, 200)}', which no part of the request carries as its Content-Location`,
          DicomStatus.DataSetDoesNotMatchSopClass,
        );
      part.referenced = true;
      if (part.noRoom) throw part.noRoom;
      if (part.tooLarge)
        throw refuse(
          'stow.bulk-data-too-large',
          `${at}: bulk data part ${part.partNo} exceeds ${this.limits.maxBulkBytes} bytes (limits.maxInstanceBytes)`,
          DicomStatus.OutOfResources,
        );
      const external: ExternalValue = {
        external: true,
        length: part.length,
        read: () => part.bytes!.read(),
      };
      if (part.mediaType === 'application/octet-stream') return external;
      if (tagPath.length === 1 && tagPath[0] === Tags.PixelData) {
        pixel.part = part;
        return external;
      }
      throw refuse(
        'stow.bulk-data-media-type',
        `${at}: bulk data part ${part.partNo} is ${part.mediaType}; only pixel data may be compressed, other bulk data is application/octet-stream`,
        DicomStatus.CannotUnderstand,
      );
    };
    let elements = jsonToWriteElements(instance.json, resolve);
    elements = await this.inlineNested(elements);

    const declared = elements.find((e) => e.tag === Tags.TransferSyntaxUID);
    const declaredTs = declared ? textOf(declared.value) : undefined;
    let ts = declaredTs || TransferSyntax.ExplicitVRLittleEndian;
    let encapsulated: { fragments: ExternalValue[] } | undefined;
    if (pixel.part) {
      const named = pixel.part.transferSyntax ?? DEFAULT_TRANSFER_SYNTAX[pixel.part.mediaType];
      if (!named)
        throw refuse(
          'stow.transfer-syntax-missing',
          `pixel data part ${pixel.part.partNo} is ${pixel.part.mediaType.slice(0, 60)} without a transfer-syntax parameter, and that media type has no default transfer syntax: name the transfer syntax of the compressed pixel data`,
          DicomStatus.TransferSyntaxNotSupported,
        );
      if (declaredTs && declaredTs !== named)
        throw refuse(
          'stow.transfer-syntax-conflict',
          `the metadata's Transfer Syntax UID (0002,0010) is ${declaredTs}, but pixel data part ${pixel.part.partNo} says transfer-syntax=${named}`,
          DicomStatus.DataSetDoesNotMatchSopClass,
        );
      if (isNativeTransferSyntax(named) || !transferSyntaxEncoding(named))
        throw refuse(
          'stow.transfer-syntax-unsupported',
          `pixel data part ${pixel.part.partNo} names transfer-syntax=${named.slice(0, 64)}, which is not a compressed transfer syntax this archive knows: send native pixel data as application/octet-stream`,
          DicomStatus.TransferSyntaxNotSupported,
        );
      const frames = elements.find((e) => e.tag === Tags.NumberOfFrames);
      if (frames && Number(textOf(frames.value)) > 1)
        throw refuse(
          'stow.compressed-multiframe',
          `pixel data part ${pixel.part.partNo} is one compressed part for ${textOf(frames.value)} frames: Custos takes compressed pixel data of single-frame instances only; send this one as application/dicom`,
          DicomStatus.TransferSyntaxNotSupported,
        );
      ts = named;
      // One part is one fragment: a frame (PS3.5 A.4), with an empty Basic Offset Table.
      const px = elements.find((e) => e.tag === Tags.PixelData)!;
      encapsulated = { fragments: [px.value as ExternalValue] };
    }
    const encoding = transferSyntaxEncoding(ts);
    if (!encoding || encoding.deflated || !encoding.little)
      throw refuse(
        'stow.transfer-syntax-unsupported',
        `Transfer Syntax UID (0002,0010) ${ts.slice(0, 64)} is not supported for metadata and bulk data: use Explicit VR Little Endian (${TransferSyntax.ExplicitVRLittleEndian}), Implicit VR Little Endian, or a compressed syntax named on the pixel data part`,
        DicomStatus.TransferSyntaxNotSupported,
      );
    const write = (els: WriteElement[]) =>
      part10Pieces(els, {
        transferSyntaxUid: ts,
        ...(encapsulated ? { encapsulatedPixelData: encapsulated } : {}),
      });
    try {
      return write(elements);
    } catch (e) {
      // JSON text is Unicode: what the data set's Specific Character Set cannot hold is written in UTF-8.
      if (e instanceof CustosError && e.code === 'dicom.not-encodable') return write(inUtf8(elements));
      if (e instanceof CustosError && e.code === 'dicom.write-failed')
        throw refuse('stow.bad-metadata', e.message, DicomStatus.CannotUnderstand);
      throw e;
    }
  }

  /** Bulk data inside sequence items read into memory (an item is written whole), within the metadata bound. */
  private async inlineNested(elements: WriteElement[]): Promise<WriteElement[]> {
    let budget = this.limits.maxMetadataBytes;
    const walk = async (list: WriteElement[]): Promise<WriteElement[]> =>
      Promise.all(
        list.map(async (e): Promise<WriteElement> => {
          if (isExternal(e.value)) {
            budget -= e.value.length;
            if (budget < 0)
              throw refuse(
                'stow.bulk-data-too-large',
                `bulk data inside sequence items exceeds ${this.limits.maxMetadataBytes} bytes (limits.maxHeaderBytes)`,
                DicomStatus.OutOfResources,
              );
            const chunks: Buffer[] = [];
            for await (const c of e.value.read()) chunks.push(c);
            return { ...e, value: Buffer.concat(chunks) };
          }
          if (e.vr === 'SQ')
            return { ...e, value: await Promise.all((e.value as WriteElement[][]).map(walk)) };
          return e;
        }),
      );
    const top = elements.map(async (e) =>
      e.vr === 'SQ' ? { ...e, value: await Promise.all((e.value as WriteElement[][]).map(walk)) } : e,
    );
    return Promise.all(top);
  }

  /**
   * Bulk data parts no BulkDataURI of the metadata refers to. A part named by an instance that failed before its
   * BulkDataURI was reached is referred to all the same: that instance's failure says what was wrong.
   */
  unreferenced(): PartRefusal[] {
    const named = new Set<string>();
    // Deep enough for every data set jsonToWriteElements takes (MAX_JSON_DEPTH sequences, 4 levels each).
    const walk = (v: unknown, depth: number): void => {
      if (depth > 4 * MAX_JSON_DEPTH + 4) return;
      if (Array.isArray(v)) v.forEach((x) => walk(x, depth + 1));
      else if (typeof v === 'object' && v !== null)
        for (const [k, x] of Object.entries(v)) {
          if (k === 'BulkDataURI' && typeof x === 'string') named.add(x);
          else walk(x, depth + 1);
        }
    };
    for (const instance of this.instances) walk(instance.json, 0);
    return [...this.bulk.values()]
      .filter((p) => !p.referenced && !named.has(p.location))
      .map((p) => ({
        partNo: p.partNo,
        reason: DicomStatus.CannotUnderstand,
        code: 'stow.bulk-data-unreferenced',
        text: `part ${p.partNo}: Content-Location '${p.location.slice(0, 200)}' is referred to by no BulkDataURI of the metadata: its bytes were discarded`,
      }));
  }

  /** Removes the spool. */
  async close(): Promise<void> {
    await this.spooled?.close();
  }
}

/**
 * PS3.18 §8.7.3, Table 8.7.3-5: the transfer syntax of compressed bulk data whose media type has no transfer-syntax
 * parameter (the default, "D", of each single-frame media type).
 */
const DEFAULT_TRANSFER_SYNTAX: Record<string, string> = {
  'image/jpeg': '1.2.840.10008.1.2.4.70',
  'image/dicom-rle': '1.2.840.10008.1.2.5',
  'image/jls': '1.2.840.10008.1.2.4.80',
  'image/jp2': '1.2.840.10008.1.2.4.90',
  'image/jpx': '1.2.840.10008.1.2.4.92',
};

/** The bytes of assembled pieces, external values read from the spool in their place. */
export async function* streamPieces(pieces: Part10Piece[]): AsyncGenerator<Buffer> {
  for (const p of pieces) {
    if (!isExternal(p)) {
      yield p;
      continue;
    }
    let seen = 0;
    for await (const chunk of p.read()) {
      seen += chunk.length;
      yield chunk;
    }
    if (seen !== p.length)
      throw new CustosError({
        code: 'stow.spool-changed',
        message: `a spooled bulk data part had ${seen} bytes, not the ${p.length} received`,
        httpStatus: 500,
      });
  }
}

const textOf = (v: WriteValue): string =>
  (Array.isArray(v) ? String(v[0] ?? '') : typeof v === 'string' ? v : '').replace(/[\0 ]+$/, '');
