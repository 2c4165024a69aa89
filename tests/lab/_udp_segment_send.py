"""Sends UDP datagrams the way QUIC stacks do, several per send(2) with the
UDP_SEGMENT socket option (Linux 4.18), for the segmentation-offload lab test.

    python3 tests/lab/_udp_segment_send.py HOST PORT SENDS SEGMENTS SIZE

Each send is one buffer of SEGMENTS datagrams of SIZE bytes (the kernel cuts
it): datagram n carries n as a 4-byte big-endian number, then byte i equal
to (n + i) % 251. Sends are paced 10 ms apart so the receiver's socket buffer
never overflows. Prints {"datagrams": N, "sends": M} as JSON.
"""
import json
import socket
import struct
import sys
import time

UDP_SEGMENT = 103  # linux/udp.h

host, port, sends, segments, size = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_UDP, UDP_SEGMENT, size)


def datagram(n):
    return struct.pack("!I", n) + bytes((n + i) % 251 for i in range(4, size))


n = 0
for _ in range(sends):
    buf = b"".join(datagram(n + k) for k in range(segments))
    sock.sendto(buf, (host, port))
    n += segments
    time.sleep(0.01)
print(json.dumps({"datagrams": n, "sends": sends}))
