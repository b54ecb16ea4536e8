/**
 * CDR (XCDR1, little endian: encapsulation header 00 01 00 00) encoding and decoding of ROS 2
 * messages with @foxglove/rosmsg2-serialization, one cached reader/writer per type. The bytes are
 * exactly what rmw produces, so they can go straight to `publisher.publish(Buffer)` (rclnodejs
 * publishes a Buffer as a serialized message) and into MCAP files.
 */
import { MessageReader, MessageWriter } from '@foxglove/rosmsg2-serialization';
import { BitmarError } from '../errors.js';
import { definitionsFor, shortTypeName } from './definitions.js';

const readers = new Map<string, MessageReader>();
const writers = new Map<string, MessageWriter>();

function writerFor(type: string): MessageWriter {
  const key = shortTypeName(type);
  let w = writers.get(key);
  if (!w) {
    w = new MessageWriter(definitionsFor(key));
    writers.set(key, w);
  }
  return w;
}

function readerFor(type: string): MessageReader {
  const key = shortTypeName(type);
  let r = readers.get(key);
  if (!r) {
    r = new MessageReader(definitionsFor(key));
    readers.set(key, r);
  }
  return r;
}

/**
 * Serializes `message` (field names as in the .msg; uint64/int64 as bigint; `time` as
 * {sec, nanosec}) to CDR with its 4-byte encapsulation header.
 * Throws BitmarError BITMAR_ERR_ROS2_MESSAGE when the object does not fit the definition.
 */
export function encodeMessage(type: string, message: unknown): Uint8Array {
  try {
    return writerFor(type).writeMessage(message);
  } catch (e) {
    if (e instanceof BitmarError) throw e;
    throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `cannot encode ${type}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Deserializes CDR bytes of `type`. Byte arrays come back as views into `bytes` (no copy).
 * Throws BitmarError BITMAR_ERR_ROS2_MESSAGE on truncated or malformed data — including a
 * sequence that claims more bytes than `bytes` holds, which a plain view would silently read
 * past (rclnodejs and MCAP hand out views into larger buffers).
 */
export function decodeMessage<T>(type: string, bytes: Uint8Array): T {
  const reader = readerFor(type);
  let msg: T;
  try {
    msg = reader.readMessage<T>(bytes);
  } catch (e) {
    throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `cannot decode ${type} (${bytes.byteLength} bytes): ${(e as Error).message}`, { cause: e });
  }
  if (reader.lastReadByteLength() > bytes.byteLength) {
    throw new BitmarError('BITMAR_ERR_ROS2_MESSAGE', `truncated ${type}: needs ${reader.lastReadByteLength()} bytes, got ${bytes.byteLength}`);
  }
  return msg;
}

/** ROS 2 `builtin_interfaces/Time` from nanoseconds since the epoch (negative clamps to 0). */
export function timeFromNs(ns: bigint): { sec: number; nanosec: number } {
  const t = ns < 0n ? 0n : ns;
  return { sec: Number(t / 1_000_000_000n), nanosec: Number(t % 1_000_000_000n) };
}

/** Nanoseconds since the epoch from a ROS 2 time. */
export function nsFromTime(t: { readonly sec: number; readonly nanosec: number }): bigint {
  return BigInt(t.sec) * 1_000_000_000n + BigInt(t.nanosec);
}
