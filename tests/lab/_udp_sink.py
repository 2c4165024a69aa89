"""A UDP sink for the segmentation-offload lab test: binds ADDR:PORT with an
8 MiB receive buffer (SO_RCVBUFFORCE: the test is root, and a burst of
segments must not overflow the default buffer on a loaded machine), prints
`listening`, then counts datagrams and checks each against the pattern of
_udp_segment_send.py (a 4-byte big-endian sequence number, then byte i equal
to (seq + i) % 251). Prints one JSON summary and exits once IDLE_MS pass
without a datagram after the first, or MAX_MS after the start.

    python3 tests/lab/_udp_sink.py ADDR PORT IDLE_MS MAX_MS
"""
import json
import socket
import struct
import sys
import time

SO_RCVBUFFORCE = 33  # asm-generic/socket.h

addr, port, idle_ms, max_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
sock.bind((addr, port))
print("listening", flush=True)

end = time.monotonic() + max_ms / 1000
seen, received, corrupt, duplicates, total, sizes = set(), 0, 0, 0, 0, set()
sock.settimeout(max_ms / 1000)
while True:
    left = end - time.monotonic()
    if left <= 0:
        break
    sock.settimeout(min(left, idle_ms / 1000) if received else left)
    try:
        msg = sock.recv(65535)
    except socket.timeout:
        break
    received += 1
    total += len(msg)
    sizes.add(len(msg))
    if len(msg) < 4:
        corrupt += 1
        continue
    (seq,) = struct.unpack("!I", msg[:4])
    if any(msg[i] != (seq + i) % 251 for i in range(4, len(msg))):
        corrupt += 1
        continue
    if seq in seen:
        duplicates += 1
    seen.add(seq)
summary = {"received": received, "corrupt": corrupt, "duplicates": duplicates,
           "distinct": len(seen), "bytes": total, "sizes": sorted(sizes)}
top = max(seen) + 1 if seen else 0
missing = [i for i in range(top) if i not in seen]
if missing:  # only when something is lost: the first missing sequence numbers say which sends
    summary["missing"] = missing[:8]
print(json.dumps(summary))
