import { CustosError } from '../domain/errors.js';
import { createHash, randomBytes } from 'node:crypto';
import { writePart10, type WriteElement } from '../dicom/part10-writer.js';
import { base32Decode, totp } from '../domain/totp.js';
import { ROLES } from '../domain/principal.js';
import { systemPrincipal } from '../services/auth-service.js';
import type { CustosApp } from './custos-app.js';

/**
 * `custos serve --demo` (docs/console.md): synthetic patients and studies, ingested through the real ingest
 * pipeline, and one account per role, so that a first look at the console needs one command. Nothing here
 * is real patient data; every value is generated from the names below.
 */

const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
const MR_IMAGE = '1.2.840.10008.5.1.4.1.1.4';

export interface DemoAccount {
  username: string;
  role: string;
  department?: string;
  physicianName?: string;
  displayName: string;
}

/** One account per role the shipped policies know (administrator is the first-start account). */
export const DEMO_ACCOUNTS: DemoAccount[] = [
  { username: 'rad.rossi', role: 'radiologist', department: 'Radiology', displayName: 'Dr Maria Rossi' },
  { username: 'tech.ng', role: 'technologist', department: 'Radiology', displayName: 'Sam Ng' },
  {
    username: 'ref.house',
    role: 'referring-physician',
    physicianName: 'House^Gregory',
    displayName: 'Dr Gregory House',
  },
  { username: 'student.li', role: 'student', displayName: 'Wei Li' },
  { username: 'sys.admin', role: 'sysadmin', displayName: 'Ops Admin' },
  { username: 'owner.diaz', role: 'data-owner', department: 'Radiology', displayName: 'Dr Ana Diaz' },
  { username: 'steward.kim', role: 'data-steward', displayName: 'Jo Kim' },
  { username: 'custodian.obi', role: 'data-custodian', displayName: 'Chidi Obi' },
  { username: 'privacy.weber', role: 'privacy-officer', displayName: 'Lena Weber' },
  { username: 'research.tan', role: 'researcher', displayName: 'Mei Tan' },
];

interface DemoStudy {
  patientId: string;
  patientName: string;
  birthDate: string;
  sex: string;
  date: string;
  accession: string;
  description: string;
  modality: 'CT' | 'MR';
  referring: string;
  department: string;
  series: number;
  instances: number;
  /** Leave out a Type 1 attribute so that the object lands in the quarantine. */
  defective?: boolean;
}

const FAMILY = [
  'Martin',
  'Bernard',
  'Dubois',
  'Thomas',
  'Robert',
  'Richard',
  'Petit',
  'Durand',
  'Leroy',
  'Moreau',
];
const GIVEN = ['Alice', 'Bruno', 'Chloe', 'David', 'Emma', 'Felix', 'Gina', 'Hugo', 'Ines', 'Jules'];
const REFERRING = ['House^Gregory', 'Wilson^James', 'Cuddy^Lisa'];
const DESCRIPTIONS = { CT: ['CT HEAD', 'CT CHEST', 'CT ABDOMEN'], MR: ['MR BRAIN', 'MR KNEE', 'MR SPINE'] };

/** The demo's studies: deterministic, dated over the last weeks so the dashboard has a shape. */
export function demoStudies(today: Date): DemoStudy[] {
  const out: DemoStudy[] = [];
  for (let i = 0; i < 12; i++) {
    const modality = i % 3 === 2 ? 'MR' : 'CT';
    const d = new Date(today.getTime() - (i * 2 + 1) * 86_400_000);
    out.push({
      patientId: `DEMO-${String(1000 + (i % 8)).padStart(4, '0')}`,
      patientName: `${FAMILY[i % 8]}^${GIVEN[i % 8]}`,
      birthDate: `19${50 + ((i * 7) % 45)}0${1 + (i % 9)}15`,
      sex: i % 2 ? 'M' : 'F',
      date: d.toISOString().slice(0, 10).replace(/-/g, ''),
      accession: `ACC${String(2000 + i)}`,
      description: DESCRIPTIONS[modality][i % 3]!,
      modality,
      referring: REFERRING[i % 3]!,
      department: i % 4 === 3 ? 'Cardiology' : 'Radiology',
      series: 1 + (i % 2),
      instances: 2,
    });
  }
  out.push({ ...out[0]!, accession: 'ACC2999', description: 'CT HEAD (no position)', defective: true });
  return out;
}

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
/** A UID under the 2.25 root derived from a name, so a re-seed produces the same objects. */
const demoUid = (name: string) =>
  `2.25.${BigInt(`0x${createHash('sha256').update(`custos-demo:${name}`).digest('hex').slice(0, 30)}`)}`;

function instance(s: DemoStudy, series: number, n: number): Buffer {
  const studyUid = demoUid(`${s.accession}`);
  const rows = 16;
  const cols = 16;
  const pixels = Buffer.alloc(rows * cols * 2);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++)
      pixels.writeUInt16LE(((r * 37 + c * 11 + n * 101) % 1024) * 4, (r * cols + c) * 2);
  const sopClass = s.modality === 'CT' ? CT_IMAGE : MR_IMAGE;
  const els: WriteElement[] = [
    { tag: t(0x0008, 0x0005), vr: 'CS', value: 'ISO_IR 192' },
    {
      tag: t(0x0008, 0x0008),
      vr: 'CS',
      value: s.modality === 'CT' ? ['ORIGINAL', 'PRIMARY', 'AXIAL'] : ['ORIGINAL', 'PRIMARY', 'M'],
    },
    { tag: t(0x0008, 0x0016), vr: 'UI', value: sopClass },
    { tag: t(0x0008, 0x0018), vr: 'UI', value: demoUid(`${s.accession}/${series}/${n}`) },
    { tag: t(0x0008, 0x0020), vr: 'DA', value: s.date },
    { tag: t(0x0008, 0x0030), vr: 'TM', value: '093000' },
    { tag: t(0x0008, 0x0050), vr: 'SH', value: s.accession },
    { tag: t(0x0008, 0x0060), vr: 'CS', value: s.modality },
    { tag: t(0x0008, 0x0070), vr: 'LO', value: 'Custos Demo' },
    { tag: t(0x0008, 0x0090), vr: 'PN', value: s.referring },
    { tag: t(0x0008, 0x1030), vr: 'LO', value: s.description },
    { tag: t(0x0008, 0x1040), vr: 'LO', value: s.department },
    { tag: t(0x0010, 0x0010), vr: 'PN', value: s.patientName },
    { tag: t(0x0010, 0x0020), vr: 'LO', value: s.patientId },
    { tag: t(0x0010, 0x0030), vr: 'DA', value: s.birthDate },
    { tag: t(0x0010, 0x0040), vr: 'CS', value: s.sex },
    { tag: t(0x0018, 0x0050), vr: 'DS', value: '1' },
    ...(s.modality === 'CT'
      ? [{ tag: t(0x0018, 0x0060), vr: 'DS', value: '120' } as WriteElement]
      : ([
          { tag: t(0x0018, 0x0020), vr: 'CS', value: 'SE' },
          { tag: t(0x0018, 0x0021), vr: 'CS', value: 'NONE' },
          { tag: t(0x0018, 0x0022), vr: 'CS', value: '' },
          { tag: t(0x0018, 0x0023), vr: 'CS', value: '2D' },
          { tag: t(0x0018, 0x0081), vr: 'DS', value: '10' },
          { tag: t(0x0018, 0x0091), vr: 'IS', value: '1' },
        ] as WriteElement[])),
    { tag: t(0x0020, 0x000d), vr: 'UI', value: studyUid },
    { tag: t(0x0020, 0x000e), vr: 'UI', value: demoUid(`${s.accession}/${series}`) },
    { tag: t(0x0020, 0x0010), vr: 'SH', value: '1' },
    { tag: t(0x0020, 0x0011), vr: 'IS', value: String(series) },
    ...(s.modality === 'CT' ? [{ tag: t(0x0020, 0x0012), vr: 'IS', value: '1' } as WriteElement] : []),
    { tag: t(0x0020, 0x0013), vr: 'IS', value: String(n) },
    ...(s.defective
      ? []
      : [{ tag: t(0x0020, 0x0032), vr: 'DS', value: ['0', '0', String(n)] } as WriteElement]),
    { tag: t(0x0020, 0x0037), vr: 'DS', value: ['1', '0', '0', '0', '1', '0'] },
    { tag: t(0x0020, 0x0052), vr: 'UI', value: `${studyUid}.1` },
    { tag: t(0x0020, 0x1040), vr: 'LO', value: '' },
    { tag: t(0x0028, 0x0002), vr: 'US', value: 1 },
    { tag: t(0x0028, 0x0004), vr: 'CS', value: 'MONOCHROME2' },
    { tag: t(0x0028, 0x0010), vr: 'US', value: rows },
    { tag: t(0x0028, 0x0011), vr: 'US', value: cols },
    { tag: t(0x0028, 0x0030), vr: 'DS', value: ['0.5', '0.5'] },
    { tag: t(0x0028, 0x0100), vr: 'US', value: 16 },
    { tag: t(0x0028, 0x0101), vr: 'US', value: 12 },
    { tag: t(0x0028, 0x0102), vr: 'US', value: 11 },
    { tag: t(0x0028, 0x0103), vr: 'US', value: 0 },
    ...(s.modality === 'CT'
      ? ([
          { tag: t(0x0028, 0x1052), vr: 'DS', value: '0' },
          { tag: t(0x0028, 0x1053), vr: 'DS', value: '1' },
        ] as WriteElement[])
      : []),
    { tag: t(0x7fe0, 0x0010), vr: 'OW', value: pixels },
  ];
  els.sort((a, b) => a.tag - b.tag);
  return writePart10(els, { transferSyntaxUid: '1.2.840.10008.1.2.1' });
}

export interface DemoSeed {
  /**
   * Accounts created now, each with the password it signs in with and, for roles that must have a second
   * factor, the TOTP secret (base32) to add to an authenticator app. Empty when the demo was seeded before.
   */
  accounts: { username: string; role: string; password: string; totpSecret?: string }[];
  stored: number;
  quarantined: number;
}

/**
 * Seed the demo once; a second start finds the accounts and changes nothing. `newArchive: false` (a data
 * directory that held an archive before this start) without the demo's accounts is refused: synthetic patients
 * and ten accounts with printed passwords have no place in a real archive.
 */
export async function seedDemo(app: CustosApp, opts: { newArchive?: boolean } = {}): Promise<DemoSeed> {
  const actor = systemPrincipal('demo');
  const existing = await app.index.db
    .selectFrom('users')
    .select('username')
    .where(
      'username',
      'in',
      DEMO_ACCOUNTS.map((a) => a.username),
    )
    .execute();
  if (existing.length > 0) return { accounts: [], stored: 0, quarantined: 0 };
  if (opts.newArchive === false)
    throw new CustosError({
      code: 'demo.not-new',
      message: `--demo seeds synthetic patients and demo accounts into a new data directory only; ${app.config.dataDir} already holds an archive (start it without --demo, or give --data a new directory)`,
    });
  const accounts: DemoSeed['accounts'] = [];
  for (const a of DEMO_ACCOUNTS) {
    if (!(ROLES as readonly string[]).includes(a.role)) continue;
    // Through the same services a person would use: a one-time password, changed by its owner, then TOTP
    // enrolled and confirmed with a computed code where the role requires it. All of it is in the ledger.
    const { password: oneTime } = await app.accounts.add(actor, a);
    const owner = await app.auth.localPrincipal(a.username, 'demo');
    const password = `demo-${randomBytes(9).toString('base64url')}`;
    await app.auth.changePassword(owner, oneTime, password);
    let totpSecret: string | undefined;
    if (app.auth.mfaRequired(a.role)) {
      totpSecret = (await app.auth.mfaEnroll(owner)).secret;
      await app.auth.mfaConfirm(owner, totp(base32Decode(totpSecret), app.clock.now()));
    }
    accounts.push({ username: a.username, role: a.role, password, ...(totpSecret ? { totpSecret } : {}) });
  }
  let stored = 0;
  let quarantined = 0;
  for (const s of demoStudies(app.clock.now())) {
    for (let se = 1; se <= s.series; se++)
      for (let n = 1; n <= s.instances; n++) {
        const bytes = instance(s, se, n);
        const outcome = await app.ingest.ingest(
          actor,
          (async function* () {
            yield bytes;
          })(),
          { channel: 'import' },
        );
        if (outcome.status === 'quarantined') quarantined++;
        else if (outcome.status === 'stored') stored++;
      }
  }
  return { accounts, stored, quarantined };
}

export function demoBanner(seed: DemoSeed, url: string): string {
  if (!seed.accounts.length)
    return `custos: demo data already seeded; sign in at ${url}/ with the passwords printed on the first --demo start\n`;
  const width = Math.max(...seed.accounts.map((a) => a.username.length));
  return [
    '',
    `Custos demo: ${seed.stored} synthetic instances archived, ${seed.quarantined} in the quarantine.`,
    `Open ${url}/ and sign in as one of these accounts (shown once; the TOTP secret goes into an`,
    'authenticator app, or: oathtool --totp -b SECRET):',
    ...seed.accounts.map((a) =>
      `  ${a.username.padEnd(width)}  ${a.password}  ${`(${a.role})`.padEnd(22)}${a.totpSecret ? `TOTP ${a.totpSecret}` : ''}`.trimEnd(),
    ),
    '',
  ].join('\n');
}
