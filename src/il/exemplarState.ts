// The exemplar memory's saved forms and its byte counts (types only, no behaviour): the metadata
// of a saved memory, its float32 state (toState) and its compact u8-code state (toCompactState),
// and the paper-style size of n u8 exemplars. ExemplarMemory (exemplarMemory.ts) produces and
// reads them; checkpoints (checkpoint.ts) write them.

/** Bytes of n exemplars of imageBytes u8 pixels each with their int32 labels (MemoryBreakdown.exemplars). */
export function exemplarBytesU8(n: number, imageBytes: number): number {
  return n * imageBytes + 4 * n;
}

/** How the memory holds pixels: u8 codes into per-channel palettes, or plain float32. */
export type ExemplarStorage = 'u8-palette' | 'f32';

/** JSON-able part of a saved memory. */
export interface ExemplarMemoryMeta {
  format: 'm2kd-exemplars';
  version: 1;
  /** M: total budget */
  total: number;
  channels: number;
  height: number;
  width: number;
  /** dataset label ids, in the order they were added */
  classes: number[];
  /** exemplars stored per class (same order) */
  counts: number[];
  /** the memory's `compact` option (absent: true) */
  compact?: boolean;
  /** how the memory held the pixels when saved (informational for ExemplarMemoryState) */
  storage?: ExemplarStorage;
  /** palette entries per channel: required by ExemplarMemoryCompactState, else informational */
  paletteSizes?: number[];
}

/**
 * A saved memory (toState): metadata plus every class's exemplars as float32 pixels,
 * concatenated in class order. fromState re-encodes them (losslessly) as the memory stores them.
 */
export interface ExemplarMemoryState {
  meta: ExemplarMemoryMeta;
  images: Float32Array;
}

/**
 * The same, as stored (toCompactState, 'u8-palette' storage only): u8 codes [n, c, h, w] and the
 * channels' palettes concatenated (meta.paletteSizes entries each): about 1/4 of the size.
 */
export interface ExemplarMemoryCompactState {
  meta: ExemplarMemoryMeta;
  codes: Uint8Array;
  palette: Float32Array;
}
