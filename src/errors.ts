/**
 * Every error code the node can raise. Codes are stable (`BITMAR_ERR_<AREA>_<WHAT>`) and never
 * reused; docs/errors.md lists each with how to fix it, and test/errors.test.ts keeps the two in step.
 */

export const ERROR_CODES = {
  // config
  BITMAR_ERR_CONFIG_INVALID: 'The configuration is invalid; the message names each key and its allowed values.',
  BITMAR_ERR_CONFIG_FILE: 'A configuration file could not be read or parsed.',
  // model files
  BITMAR_ERR_MODEL_NOT_FOUND: 'The model file does not exist.',
  BITMAR_ERR_MODEL_FORMAT: 'The model file is not a valid GGUF file (bad magic, version, truncated, or corrupt).',
  BITMAR_ERR_MODEL_MISMATCH: 'A tensor or hyperparameter in the model file has the wrong shape, type or value.',
  BITMAR_ERR_MODEL_ARCH: 'The model architecture is not supported by this engine.',
  BITMAR_ERR_MODEL_CHECKPOINT_KEYS: 'A checkpoint to convert has unexpected or missing state-dict keys.',
  BITMAR_ERR_TOKENIZER: 'The tokenizer stored in the model file is invalid.',
  // native kernels
  BITMAR_ERR_NATIVE_UNAVAILABLE: 'The native addon is not built; the TypeScript kernels are used instead.',
  BITMAR_ERR_NATIVE_ARGUMENT: 'A native kernel was called with an argument of the wrong size or type.',
  // inputs
  BITMAR_ERR_IMAGE_DECODE: 'An image could not be decoded (unsupported format, truncated or corrupt data).',
  BITMAR_ERR_IMAGE_SIZE: 'An image has zero, inconsistent or too large dimensions.',
  BITMAR_ERR_IMAGE_ENCODING: 'A raw image uses an encoding that is not supported.',
  BITMAR_ERR_PROMPT_INVALID: 'A prompt is not valid UTF-8 text or is too long.',
  BITMAR_ERR_PAYLOAD_TOO_LARGE: 'A message is larger than the configured limit.',
  // memory
  BITMAR_ERR_MEMORY_OPEN: 'The memory store could not be opened (corrupt or foreign database, or no permission).',
  BITMAR_ERR_MEMORY_WRITE: 'The memory store could not be written (disk full or read-only).',
  BITMAR_ERR_MEMORY_VECTOR: 'An episode vector has the wrong width or contains NaN/Infinity.',
  BITMAR_ERR_MEMORY_SCHEMA: 'The memory database has a schema version newer than this node understands.',
  BITMAR_ERR_MEMORY_IMPORT: 'A memory export file is invalid.',
  // transports
  BITMAR_ERR_MQTT_CONNECT: 'The MQTT broker could not be reached or refused the connection.',
  BITMAR_ERR_MQTT_AUTH: 'The MQTT broker rejected the credentials.',
  BITMAR_ERR_MQTT_PORT_IN_USE: 'The embedded MQTT broker port is in use.',
  BITMAR_ERR_ROS2_UNAVAILABLE: 'ROS 2 is not available in this environment.',
  BITMAR_ERR_ROS2_MESSAGE: 'A ROS 2 message could not be decoded.',
  BITMAR_ERR_BAG_READ: 'An MCAP bag could not be read.',
  // service
  BITMAR_ERR_SERVICE_INSTALL: 'The systemd service could not be installed.',
  // generation
  BITMAR_ERR_GENERATION_CANCELLED: 'A generation was cancelled by a newer frame, a new prompt or shutdown.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error class of the node: a stable code, a message that says what to do, and a cause. */
export class BitmarError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BitmarError';
    this.code = code;
  }
}

export function isBitmarError(e: unknown, code?: ErrorCode): e is BitmarError {
  return e instanceof BitmarError && (code === undefined || e.code === code);
}
