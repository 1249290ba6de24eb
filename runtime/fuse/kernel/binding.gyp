# Built by scripts/build-fuse-device.sh (node-gyp from npm, Node's own headers); loaded by device.ts.
{
  "targets": [
    {
      "target_name": "fuse_device",
      "sources": ["fuse_device.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration"]
    }
  ]
}
