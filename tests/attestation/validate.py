#!/usr/bin/env python3
"""Checks a buildwatch attestation with the in-toto project's own library (in-toto-attestation
on PyPI) and, for a DSSE envelope, verifies its ed25519 signature with pyca/cryptography: an
implementation independent of the ed25519-dalek that signed it.

usage: validate.py ATTESTATION [PUBLIC_KEY_PEM]
Prints one JSON line: the subjects and the predicate's process count. Exit 1 on any failure.
"""
import base64
import json
import sys

from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement

PREDICATE = "https://in-toto.io/attestation/runtime-trace/v0.1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def fail(why: str) -> None:
    print(f"invalid attestation: {why}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    doc = json.load(open(sys.argv[1], encoding="utf-8"))
    signed = "payloadType" in doc
    if signed:
        if len(sys.argv) < 3:
            fail("a DSSE envelope needs the public key to verify")
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        key = load_pem_public_key(open(sys.argv[2], "rb").read())
        if doc["payloadType"] != PAYLOAD_TYPE:
            fail(f"payloadType {doc['payloadType']}")
        payload = base64.b64decode(doc["payload"])
        if not doc.get("signatures"):
            fail("no signature")
        for s in doc["signatures"]:
            # Raises InvalidSignature.
            key.verify(base64.b64decode(s["sig"]), pae(doc["payloadType"], payload))
        doc = json.loads(payload)
    pb = json_format.Parse(json.dumps(doc), statement_pb2.Statement())
    Statement.copy_from_pb(pb).validate()
    if pb.predicate_type != PREDICATE:
        fail(f"predicateType {pb.predicate_type}")
    predicate = doc["predicate"]
    for field in ("monitor", "monitoredProcess", "monitorLog"):
        if field not in predicate:
            fail(f"predicate.{field} missing")
    if "type" not in predicate["monitor"]:
        fail("predicate.monitor.type missing")
    for field in ("hostID", "type", "event"):
        if field not in predicate["monitoredProcess"]:
            fail(f"predicate.monitoredProcess.{field} missing")
    log = predicate["monitorLog"]
    if not any(k in log for k in ("process", "network", "fileAccess")):
        fail("monitorLog has none of process, network, fileAccess")
    # fileAccess entries are ResourceDescriptors.
    for entry in log.get("fileAccess", []):
        rd = json_format.ParseDict(entry, ResourceDescriptor("").pb)
        ResourceDescriptor.copy_from_pb(rd).validate()
    print(
        json.dumps(
            {
                "signed": signed,
                "subjects": {s.name: s.digest["sha256"] for s in pb.subject},
                "processes": len(log.get("process", [])),
                "findings": len(predicate.get("findings", [])),
            }
        )
    )


if __name__ == "__main__":
    main()
