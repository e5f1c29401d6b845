import { FAMILY_NAMES, mulberry32 } from './dataset.js';

function lastDayOfMonth(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/** The QIDO-RS query list of the tiny set: n queries of each kind, seeded (bench/run.ts, bench/policy-overhead.ts). */
export function qidoQueries(n: number, seed: number): [string, string[]][] {
  const rand = mulberry32(seed ^ 0x51d0);
  const pids = Array.from(
    { length: n },
    () => `/studies?PatientID=T${String(1 + Math.floor(rand() * 2000)).padStart(6, '0')}`,
  );
  const months = Array.from({ length: n }, () => {
    const y = 2021 + Math.floor(rand() * 4);
    const m = 1 + Math.floor(rand() * 12);
    const mm = String(m).padStart(2, '0');
    return `/studies?StudyDate=${y}${mm}01-${y}${mm}${lastDayOfMonth(y, m)}`;
  });
  // Three-letter prefixes of the generator's family names, in varied case (PN matching ignores case).
  const prefixes = FAMILY_NAMES.map((f, i) => {
    const p = [...f].slice(0, 3).join('');
    return i % 2 === 0 ? p.toUpperCase() : p.toLowerCase();
  });
  const names = Array.from(
    { length: n },
    (_, i) => `/studies?PatientName=${encodeURIComponent(prefixes[i % prefixes.length]!)}*`,
  );
  const mods = Array.from(
    { length: n },
    (_, i) => `/studies?ModalitiesInStudy=${['MR', 'CT', 'CR', 'MG', 'US'][i % 5]}`,
  );
  return [
    ['by PatientID', pids],
    ['by one-month StudyDate', months],
    ['by PatientName prefix', names],
    ['by ModalitiesInStudy', mods],
  ];
}
