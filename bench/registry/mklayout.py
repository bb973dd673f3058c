#!/usr/bin/env python3
"""Writes an OCI image layout with N random layers totalling SIZE_MB.

Random bytes do not compress, so neither side spends time on gzip: the
benchmark measures the registry, not the compressor. Usage:
mklayout.py DIR LAYERS SIZE_MB
"""
import hashlib, json, os, sys

def put(blobs, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)

def main():
    out, layers, size_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    per = size_mb * 1024 * 1024 // layers
    descs, diffs = [], []
    for _ in range(layers):
        dg, n = put(blobs, os.urandom(per))
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg, "size": n})
        diffs.append(dg)
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
    cd, cn = put(blobs, cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                      "layers": descs}).encode()
    md, mn = put(blobs, man)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn}]}, f)

main()
