{
  "targets": [
    {
      "target_name": "m2kd",
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('native').filter(f=>f.endsWith('.cc')).map(f=>'native/'+f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('kernels/cpu').filter(f=>f.endsWith('.cc')).map(f=>'kernels/cpu/'+f).join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "kernels/include",
        "kernels/cpu",
        "native"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-Wall", "-Wno-unused-function", "-Wno-sign-compare"],
      "ldflags": ["-pthread"]
    }
  ]
}
