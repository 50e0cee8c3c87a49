#!/usr/bin/python3
"""Independent reader of t6's TensorBoard event files, for tests/test_tensorboard_log.cpp.

  read_events.py EVENT_DIR METRICS_JSONL

Decodes every TFRecord of the one event file in EVENT_DIR (checking both masked CRC-32C sums) with
protobuf's Python runtime and classes that protoc generates from event.proto and summary.proto, then
checks that the events say exactly what metrics.jsonl says: the first event is the file version,
then one event per record at the record's step, with one scalar per number of the record (but
"step") under the same name, equal as a float32. Prints "ok N events" or the first difference and
exits 1.
"""
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    data = open(path, "rb").read()
    at = 0
    while at < len(data):
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        if length_crc != masked(crc32c(header)):
            sys.exit("%s: bad length checksum at byte %d" % (path, at))
        body = data[at + 12:at + 12 + length]
        (body_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        if len(body) != length or body_crc != masked(crc32c(body)):
            sys.exit("%s: bad data checksum at byte %d" % (path, at))
        yield body
        at += 16 + length


def event_class():
    here = os.path.dirname(os.path.abspath(__file__))
    out = tempfile.mkdtemp(prefix="t6_event_pb2_")
    subprocess.check_call(["protoc", "--proto_path=" + here, "--python_out=" + out, "event.proto", "summary.proto"])
    sys.path.insert(0, out)
    import event_pb2
    return event_pb2.Event


def float32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]


def main():
    event_dir, metrics_path = sys.argv[1], sys.argv[2]
    files = glob.glob(os.path.join(event_dir, "events.out.tfevents.*"))
    if len(files) != 1:
        sys.exit("expected one event file in %s, found %s" % (event_dir, files))
    Event = event_class()
    events = []
    for body in records(files[0]):
        event = Event()
        event.ParseFromString(body)
        events.append(event)
    if not events or events[0].file_version != "brain.Event:2":
        sys.exit("the first event is not the file version")
    expected = [json.loads(line) for line in open(metrics_path)]
    scalars = events[1:]
    if len(scalars) != len(expected):
        sys.exit("%d scalar events but %d metrics records" % (len(scalars), len(expected)))
    for event, record in zip(scalars, expected):
        if event.step != record["step"]:
            sys.exit("event at step %d where metrics.jsonl has step %d" % (event.step, record["step"]))
        got = {value.tag: value.simple_value for value in event.summary.value}
        want = {key: float32(value) for key, value in record.items()
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}
        if got != want:
            sys.exit("step %d: events %s, metrics.jsonl %s" % (record["step"], got, want))
    print("ok %d events" % len(scalars))


if __name__ == "__main__":
    main()
