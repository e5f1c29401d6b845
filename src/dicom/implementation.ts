/**
 * Who wrote a Part 10 file (PS3.10 §7.1): Custos names itself in the file meta information of every object it
 * writes or converts (Implementation Class UID, Type 1; Implementation Version Name, Type 3). A converted object
 * is a new encoding written by Custos, not the sender's file: the sender's own names do not stay.
 */
export const FILE_IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1483.1';
/** The Implementation Version Name (SH, up to 16 characters) for files and for association negotiation. */
export const IMPLEMENTATION_VERSION_NAME = 'CUSTOS_0_1';
