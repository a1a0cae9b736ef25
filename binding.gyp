{
  "targets": [
    {
      "target_name": "udp_receiver",
      "sources": ["native/udp_receiver.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"]
    },
    {
      "target_name": "records",
      "sources": ["native/records.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"]
    },
    {
      "target_name": "limits",
      "sources": ["native/limits.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
