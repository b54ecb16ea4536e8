"""Minimal GGUF v3 writer/reader (little endian, alignment 32) for bitmar-stream (docs/bitmar-stream.md §5).
numpy only; shared by export_gguf.py and tools/reference/stream_reference.py."""
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
ALIGN = 32

# metadata value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# ggml tensor types
GGML_F32, GGML_F16, GGML_I8 = 0, 1, 24
_NP = {GGML_F32: np.float32, GGML_F16: np.float16, GGML_I8: np.int8}
_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
           U64: "<Q", I64: "<q", F64: "<d"}


def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


class Writer:
    def __init__(self):
        self.kv = []  # (key, type, value, elem_type)
        self.tensors = []  # (name, ne list, ggml type, bytes)

    def add(self, key, vtype, value, elem_type=None):
        self.kv.append((key, vtype, value, elem_type))

    def u32(self, key, v):
        self.add(key, U32, int(v))

    def f32(self, key, v):
        self.add(key, F32, float(v))

    def string(self, key, v):
        self.add(key, STRING, v)

    def strings(self, key, vs):
        self.add(key, ARRAY, list(vs), STRING)

    def u32s(self, key, vs):
        """Array of u32 (e.g. bitmar-stream.vision.stem_channels)."""
        self.add(key, ARRAY, [int(v) for v in vs], U32)

    def tensor(self, name, arr, ggml_type=None, ne=None):
        """arr in numpy (row-major) layout; GGUF ne = reversed numpy shape unless ne is given."""
        arr = np.ascontiguousarray(arr)
        if ggml_type is None:
            ggml_type = {np.dtype(np.float32): GGML_F32, np.dtype(np.float16): GGML_F16,
                         np.dtype(np.int8): GGML_I8, np.dtype(np.uint8): GGML_I8}[arr.dtype]
        if ne is None:
            ne = list(reversed(arr.shape))
        self.tensors.append((name, [int(x) for x in ne], ggml_type, arr.astype(arr.dtype.newbyteorder("<")).tobytes()))

    def _value(self, t, v):
        if t == STRING:
            return _str(v)
        return struct.pack(_SCALAR[t], v)

    def write(self, path):
        out = bytearray()
        out += GGUF_MAGIC + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for key, t, v, et in self.kv:
            out += _str(key) + struct.pack("<I", t)
            if t == ARRAY:
                out += struct.pack("<IQ", et, len(v))
                for x in v:
                    out += self._value(et, x)
            else:
                out += self._value(t, v)
        off = 0
        offsets = []
        for name, ne, gt, data in self.tensors:
            offsets.append(off)
            out += _str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
            out += struct.pack("<IQ", gt, off)
            off += len(data)
            off += (-off) % ALIGN
        out += b"\0" * ((-len(out)) % ALIGN)
        for (name, ne, gt, data), o in zip(self.tensors, offsets):
            out += data
            out += b"\0" * ((-len(data)) % ALIGN)
        with open(path, "wb") as f:
            f.write(out)
        return len(out)


def read(path):
    """Returns (metadata dict, tensors dict name -> (numpy array in row-major layout, ggml type, ne))."""
    buf = open(path, "rb").read()
    assert buf[:4] == GGUF_MAGIC, "not a GGUF file"
    ver, nt, nkv = struct.unpack_from("<IQQ", buf, 4)
    assert ver == 3
    pos = 24

    def rstr():
        nonlocal pos
        (n,) = struct.unpack_from("<Q", buf, pos)
        s = buf[pos + 8:pos + 8 + n].decode("utf-8")
        pos += 8 + n
        return s

    def rval(t):
        nonlocal pos
        if t == STRING:
            return rstr()
        if t == ARRAY:
            (et, n) = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            return [rval(et) for _ in range(n)]
        fmt = _SCALAR[t]
        (v,) = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v

    meta = {}
    for _ in range(nkv):
        k = rstr()
        (t,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        meta[k] = rval(t)
    infos = []
    for _ in range(nt):
        name = rstr()
        (nd,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        ne = list(struct.unpack_from("<" + "Q" * nd, buf, pos))
        pos += 8 * nd
        gt, off = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        infos.append((name, ne, gt, off))
    align = meta.get("general.alignment", ALIGN)
    base = pos + (-pos) % align
    tensors = {}
    for name, ne, gt, off in infos:
        dt = np.dtype(_NP[gt]).newbyteorder("<")
        n = int(np.prod(ne))
        a = np.frombuffer(buf, dt, n, base + off).reshape(list(reversed(ne)))
        tensors[name] = (a, gt, ne)
    return meta, tensors


# ---- ternary packing (t2-row-v1) ---------------------------------------------------------------

def ternarize(w):
    """w fp32 [out,in] -> (t int8 [out,in], s_w float32): s_w = max(mean|W|,1e-5) in fp64 rounded to
    fp32 once; t = clamp(round_half_even(W/s_w), -1, 1) with W/s_w computed in fp32."""
    w = np.asarray(w, np.float32)
    s = np.float32(max(np.abs(w.astype(np.float64)).mean(), 1e-5))
    t = np.clip(np.rint(w / s), -1, 1).astype(np.int8)
    return t, s


def pack_t2(t):
    """t int8 [out,in] in {-1,0,1} -> uint8 [out, ceil(in/4)]: code t+1, weight j in byte j>>2, bits 2(j&3);
    trailing codes of the last byte are 1."""
    out_, in_ = t.shape
    rb = (in_ + 3) // 4
    codes = np.ones((out_, rb * 4), np.uint8)
    codes[:, :in_] = (t + 1).astype(np.uint8)
    c = codes.reshape(out_, rb, 4)
    return (c[..., 0] | (c[..., 1] << 2) | (c[..., 2] << 4) | (c[..., 3] << 6)).astype(np.uint8)


def unpack_t2(packed, in_):
    p = np.asarray(packed, np.uint8)
    codes = np.stack([(p >> (2 * k)) & 3 for k in range(4)], -1).reshape(p.shape[0], -1)[:, :in_]
    assert (codes <= 2).all(), "invalid t2 code 3"
    return codes.astype(np.int8) - 1
