{
  # bitmar_native: the kernels addon (native/). Each ISA's files (one per kernel family) form a static
  # library built with only that ISA's -m flags, so code outside it never uses instructions the CPU
  # may lack (dispatch.cc picks at run time). -ffp-contract=off everywhere: no fused multiply-add, so fp32 results match the
  # TypeScript kernels bit for bit.
  "target_defaults": {
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["-std=c++17", "-fno-exceptions"],
    "cflags": ["-O3", "-fPIC", "-ffp-contract=off", "-fno-math-errno"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
    "include_dirs": ["native"],
  },
  "targets": [
    {
      "target_name": "bitmar_native",
      "sources": [
        "native/addon.cc",
        "native/addon-decoder.cc",
        "native/dispatch.cc",
        "native/thread-pool.cc",
        "native/ternary/pack.cc",
        "native/ternary/bitlinear.cc",
        "native/ternary/scalar.cc",
        "native/activation/scalar.cc",
        "native/norm/scalar.cc",
        "native/attention/scalar.cc",
        "native/sample/scalar.cc",
        "native/image/scalar.cc",
        "native/conv/scalar.cc",
        "native/decode/decoder-step.cc",
        "native/notify/sd_notify.cc",
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "conditions": [
        ["target_arch=='x64'", {"dependencies": ["isa_avx2", "isa_avx512vnni"]}],
        ["target_arch=='arm64'", {"dependencies": ["isa_neon_dotprod"]}],
      ],
    },
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "isa_avx2",
          "type": "static_library",
          "sources": [
            "native/ternary/avx2.cc",
            "native/activation/avx2.cc",
            "native/norm/avx2.cc",
            "native/attention/avx2.cc",
            "native/sample/avx2.cc",
            "native/image/avx2.cc",
            "native/conv/avx2.cc",
          ],
          "cflags": ["-mavx2", "-mfma"],
        },
        {
          "target_name": "isa_avx512vnni",
          "type": "static_library",
          "sources": [
            "native/ternary/avx512-vnni.cc",
            "native/activation/avx512-vnni.cc",
            "native/attention/avx512-vnni.cc",
            "native/conv/avx512-vnni.cc",
          ],
          "cflags": ["-mavx2", "-mfma", "-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512vnni"],
        },
      ],
    }],
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "isa_neon_dotprod",
          "type": "static_library",
          "sources": ["native/ternary/neon-dotprod.cc", "native/conv/neon.cc"],
          "cflags": ["-march=armv8.2-a+dotprod"],
        },
      ],
    }],
  ],
}
