#!/usr/bin/python3
"""
Re-save a PyTorch pickle checkpoint as safetensors, for `bitmar-node convert` (docs/convert.md).

  torch_to_safetensors.py IN OUT [--unsafe-pickle]

IN is `torch.save(state_dict)` (an authors' pytorch_model.bin) or a training checkpoint dict holding
`model_state_dict` (checkpoint_epoch_*.pt, latest_checkpoint.pt; its `config` is kept as JSON in the
safetensors metadata key "bitmar.training_config"). Tensors are written as they are (fp32, the int64
update_count, …), in state-dict order. Loading uses torch.load(weights_only=True), which refuses
pickles that would run code: the unpickler only builds tensors, plain containers and numbers (an
allow-list of classes; torch 1.13's own weights_only mode cannot read plain floats); --unsafe-pickle
lifts that for files you trust.

Needs Debian's python3-torch (`apt-get install python3-torch`) under /usr/bin/python3.
Exit codes: 0 ok, 2 usage / unreadable input, 3 torch missing, 4 no state dict found.
"""
import json
import struct
import sys


def fail(code, msg):
    sys.stderr.write(f'torch_to_safetensors: {msg}\n')
    sys.exit(code)


# (module, name) pairs the restricted unpickler may build: tensors, storages, containers, numbers.
SAFE_GLOBALS = {
    ('collections', 'OrderedDict'), ('builtins', 'set'), ('builtins', 'frozenset'), ('builtins', 'complex'),
    ('builtins', 'slice'), ('_codecs', 'encode'),
    ('torch._utils', '_rebuild_tensor'), ('torch._utils', '_rebuild_tensor_v2'), ('torch._utils', '_rebuild_parameter'),
    ('torch._utils', '_rebuild_parameter_with_state'), ('torch', 'Size'), ('torch', 'device'),
    ('torch', 'float32'), ('torch', 'float16'), ('torch', 'bfloat16'), ('torch', 'float64'), ('torch', 'int64'),
    ('torch', 'int32'), ('torch', 'int16'), ('torch', 'int8'), ('torch', 'uint8'), ('torch', 'bool'),
    ('numpy.core.multiarray', 'scalar'), ('numpy.core.multiarray', '_reconstruct'), ('numpy', 'dtype'), ('numpy', 'ndarray'),
}


def restricted_pickle_module():
    import pickle
    import types

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in SAFE_GLOBALS or (module == 'torch' and name.endswith('Storage')):
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f'refusing to build {module}.{name} (not a tensor, container or number)')

    def load(f, **kw):
        return RestrictedUnpickler(f, **kw).load()

    return types.SimpleNamespace(__name__='restricted_pickle', Unpickler=RestrictedUnpickler, load=load,
                                 UnpicklingError=pickle.UnpicklingError)


def restricted_load(torch, src):
    """torch.load with the allow-list unpickler. torch 1.13's torch.load ignores `pickle_module` unless
    weights_only, so the zip/legacy readers it would call are called directly when present."""
    pm = restricted_pickle_module()
    S = torch.serialization
    if all(hasattr(S, n) for n in ('_open_file_like', '_is_zipfile', '_open_zipfile_reader', '_load', '_legacy_load')):
        with S._open_file_like(src, 'rb') as f:
            if S._is_zipfile(f):
                with S._open_zipfile_reader(f) as z:
                    return S._load(z, 'cpu', pm, encoding='utf-8')
            return S._legacy_load(f, 'cpu', pm, encoding='utf-8')
    return torch.load(src, map_location='cpu', pickle_module=pm, weights_only=False)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    unsafe = '--unsafe-pickle' in sys.argv[1:]
    if len(args) != 2:
        fail(2, 'usage: torch_to_safetensors.py IN OUT [--unsafe-pickle]')
    src, dst = args
    try:
        import torch
    except ImportError as e:
        fail(3, f'PyTorch is not installed for {sys.executable} ({e}); on Debian/Ubuntu: sudo apt-get install python3-torch')
    try:
        if unsafe:
            obj = torch.load(src, map_location='cpu')
        else:
            obj = restricted_load(torch, src)
    except Exception as e:  # noqa: BLE001 - report any load failure plainly
        hint = '' if unsafe else ' (if the file is trusted and holds more than tensors, containers and numbers, retry with --unsafe-pickle)'
        fail(2, f'cannot load {src}: {type(e).__name__}: {e}{hint}')
    meta = {'format': 'pt'}
    sd = obj
    if isinstance(obj, dict) and 'model_state_dict' in obj:
        sd = obj['model_state_dict']
        meta['bitmar.source_format'] = 'training checkpoint'
        if 'config' in obj:
            meta['bitmar.training_config'] = json.dumps(obj['config'], default=str)
        for k in ('epoch', 'global_step', 'tokens_processed'):
            if k in obj:
                meta[f'bitmar.{k}'] = str(obj[k])
    elif isinstance(obj, dict) and 'state_dict' in obj and isinstance(obj['state_dict'], dict):
        sd = obj['state_dict']
        meta['bitmar.source_format'] = 'state_dict wrapper'
    else:
        meta['bitmar.source_format'] = 'state_dict'
    if not isinstance(sd, dict):
        fail(4, f'{src} holds a {type(sd).__name__}, not a state dict (expected torch.save(model.state_dict()) or a dict with model_state_dict)')
    dtypes = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',
              torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8', torch.uint8: 'U8', torch.bool: 'BOOL'}
    header, blobs, off, skipped = {}, [], 0, []
    for name, t in sd.items():
        if not isinstance(t, torch.Tensor):
            skipped.append(name)
            continue
        t = t.detach().cpu().contiguous()
        if t.dtype not in dtypes:
            fail(2, f'tensor {name} has dtype {t.dtype}, which safetensors cannot hold here')
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {'dtype': dtypes[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if not header:
        fail(4, f'{src} holds no tensors')
    if skipped:
        meta['bitmar.skipped_entries'] = ','.join(skipped)
    header['__metadata__'] = meta
    h = json.dumps(header, separators=(',', ':')).encode('utf-8')
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(dst, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print(f'{len(header) - 1} tensors, {off} bytes')


if __name__ == '__main__':
    main()
