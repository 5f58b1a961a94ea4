{
  "targets": [
    {
      "target_name": "af_packet",
      "sources": ["native/af_packet.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2", "-fvisibility=hidden"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["native/af_packet.c"] }]
      ]
    }
  ]
}
