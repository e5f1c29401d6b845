/**
 * The presentation contexts Custos proposes to a C-MOVE destination, and how many associations they take.
 */
import { TransferSyntax } from '../../dicom/tags.js';
import type { InstanceRef } from '../../services/retrieve-service.js';

/** PS3.8 §9.3.2.2: Presentation Context IDs are the odd integers 1 to 255, so one A-ASSOCIATE-RQ proposes 128 at most. */
export const MAX_PROPOSED_CONTEXTS = 128;

export interface ProposedStorageContext {
  abstractSyntax: string;
  transferSyntaxes: string[];
}

/** One association to the destination: the contexts it proposes and the instances that go on it, in order. */
export interface StorageAssociation {
  contexts: ProposedStorageContext[];
  refs: InstanceRef[];
}

/**
 * One presentation context per (SOP class, stored transfer syntax) of the instances to send, then the forms
 * sendable() converts to, for a destination that accepts no stored form: for an object stored in Explicit VR
 * Little Endian, its class in Implicit VR Little Endian, the default transfer syntax every AE takes (PS3.5
 * §10.1); for one stored in Implicit VR, Explicit VR Little Endian; for one stored compressed in a syntax Custos
 * decodes (`decompresses`), deflated or in Explicit VR Big Endian, both. Each a context of its own, not a
 * second syntax in the first: an acceptor that takes several keeps the stored form for the object (private
 * elements keep their VRs, compressed pixels stay as they are), whatever order it prefers syntaxes in.
 *
 * Where they are more than one association may propose (MAX_PROPOSED_CONTEXTS), they are split over as many
 * associations as they need, each (SOP class, stored transfer syntax) with its converted forms on the same one as
 * its stored form, and the instances go on the association that carries their contexts: all of one association's
 * before the next is opened. Until 7 Dec 2026 the contexts past the 128th were left out, and the instances needing
 * them failed (0xA702, `no context DEST accepted takes …`).
 */
export function storageAssociations(
  refs: readonly InstanceRef[],
  decompresses: (ref: InstanceRef) => boolean,
): StorageAssociation[] {
  /** Per (SOP class, stored transfer syntax), in the order of first appearance: its forms, and its association. */
  const groups = new Map<string, { sopClassUid: string; syntaxes: Set<string>; on: number }>();
  const keyOf = (r: InstanceRef) => `${r.sopClassUid}|${r.transferSyntaxUid}`;
  for (const r of refs) {
    let g = groups.get(keyOf(r));
    if (!g) {
      g = { sopClassUid: r.sopClassUid, syntaxes: new Set([r.transferSyntaxUid]), on: 0 };
      groups.set(keyOf(r), g);
    }
    for (const ts of convertedForms(r, decompresses)) g.syntaxes.add(ts);
  }
  const associations: { stored: Set<string>; converted: Set<string>; refs: InstanceRef[] }[] = [];
  for (const g of groups.values()) {
    const forms = [...g.syntaxes].map((ts) => `${g.sopClassUid}|${ts}`);
    let a = associations.at(-1);
    const added = (x: NonNullable<typeof a>) =>
      forms.filter((f) => !x.stored.has(f) && !x.converted.has(f)).length;
    if (!a || a.stored.size + a.converted.size + added(a) > MAX_PROPOSED_CONTEXTS) {
      a = { stored: new Set(), converted: new Set(), refs: [] };
      associations.push(a);
    }
    g.on = associations.length - 1;
    const [stored, ...converted] = forms;
    a.stored.add(stored!);
    a.converted.delete(stored!);
    for (const f of converted) if (!a.stored.has(f)) a.converted.add(f);
  }
  // Each association's objects in the order they were found (study, series, instance).
  for (const r of refs) associations[groups.get(keyOf(r))!.on]!.refs.push(r);
  return associations.map((a) => ({
    contexts: [...a.stored, ...a.converted].map((f) => {
      const [abstractSyntax, ts] = f.split('|') as [string, string];
      return { abstractSyntax, transferSyntaxes: [ts] };
    }),
    refs: a.refs,
  }));
}

/** The transfer syntaxes sendable() converts an instance to, besides its stored one. */
function convertedForms(r: InstanceRef, decompresses: (ref: InstanceRef) => boolean): string[] {
  if (r.transferSyntaxUid === TransferSyntax.ExplicitVRLittleEndian)
    return [TransferSyntax.ImplicitVRLittleEndian];
  if (r.transferSyntaxUid === TransferSyntax.ImplicitVRLittleEndian)
    return [TransferSyntax.ExplicitVRLittleEndian];
  return decompresses(r) ||
    r.transferSyntaxUid === TransferSyntax.DeflatedExplicitVRLittleEndian ||
    r.transferSyntaxUid === TransferSyntax.ExplicitVRBigEndian
    ? [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian]
    : [];
}
