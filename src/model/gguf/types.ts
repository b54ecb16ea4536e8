/**
 * GGUF v3 data model shared by the reader and the writer.
 * Format: ggml docs/gguf.md (little-endian; strings are u64 length + UTF-8 bytes; tensor data
 * offsets relative to the aligned start of the data section).
 */

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
/** The only version this node reads and writes. */
export const GGUF_VERSION = 3;
/** `general.alignment` when the key is absent (gguf.md). */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;

/** Metadata value types (gguf.md `gguf_metadata_value_type`), numeric code → name. */
export const GGUF_VALUE_TYPE_NAMES = [
  'u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64',
] as const;
export type GgufValueTypeName = (typeof GGUF_VALUE_TYPE_NAMES)[number];

/** Byte size of each fixed-size value type (string and array are variable). */
export const GGUF_VALUE_TYPE_SIZE: Readonly<Record<GgufValueTypeName, number>> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 8, array: 12, u64: 8, i64: 8, f64: 8,
};

export type GgufNumberTypeName = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64';
export type GgufBigIntTypeName = 'u64' | 'i64';

/** The items of a GGUF array: plain JS values of the item type (nested arrays stay typed). */
export type GgufArrayItems =
  | { readonly itemType: GgufNumberTypeName; readonly items: readonly number[] }
  | { readonly itemType: GgufBigIntTypeName; readonly items: readonly bigint[] }
  | { readonly itemType: 'bool'; readonly items: readonly boolean[] }
  | { readonly itemType: 'string'; readonly items: readonly string[] }
  | { readonly itemType: 'array'; readonly items: readonly GgufArrayItems[] };

/** One metadata value with its GGUF type, so a file round-trips exactly. */
export type GgufValue =
  | { readonly type: GgufNumberTypeName; readonly value: number }
  | { readonly type: GgufBigIntTypeName; readonly value: bigint }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'array'; readonly value: GgufArrayItems };

/** ggml tensor types this node handles (ggml.h `enum ggml_type`). */
export const GGML_TYPE = { F32: 0, F16: 1, I8: 24, I32: 26 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPE;

/** Bytes per element of each supported ggml type (all block size 1). */
export const GGML_TYPE_SIZE: Readonly<Record<GgmlTypeName, number>> = { F32: 4, F16: 2, I8: 1, I32: 4 };

/** Name of a ggml type code, or undefined when this node does not support it. */
export function ggmlTypeName(code: number): GgmlTypeName | undefined {
  for (const [name, c] of Object.entries(GGML_TYPE)) if (c === code) return name as GgmlTypeName;
  return undefined;
}

/** One tensor as described by the file's tensor-info section. */
export interface GgufTensorInfo {
  readonly name: string;
  /** ggml `ne`, innermost (fastest varying) first. */
  readonly dims: readonly number[];
  readonly type: GgmlTypeName;
  /** Offset relative to the start of the data section (a multiple of the alignment). */
  readonly relativeOffset: number;
  /** Absolute byte offset in the file. */
  readonly offset: number;
  readonly elementCount: number;
  readonly byteLength: number;
}

/** Format `[a, b]` for messages. */
export function formatDims(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}
