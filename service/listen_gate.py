"""Stop a listening TCP socket from starting new connections, without resetting queued ones.

Closing a listener resets every connection the kernel completed but nobody accepted, and a
worker that accepts until the queue is empty and then closes leaves a window between the
two: under load a client can complete its handshake there, write its request and get a
reset (seen from the client side in the SIGTERM test: 1 of 1,617 requests). Dropping new SYN
segments first closes that window: handshakes already under way still complete (their final
ACK passes), after one round trip nothing new can enter the queue, and a dropped SYN is
retried by the client and then refused, never answered with a reset after it wrote.

A classic BPF socket filter does it (``SO_ATTACH_FILTER``, Linux, no privileges needed); it
sees each segment from its TCP header and drops those with SYN set and ACK clear.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct

log = logging.getLogger(__name__)

SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)  # Linux's value
_TCP_FLAGS_OFFSET = 13  # byte of the TCP header holding the flags
_SYN, _ACK = 0x02, 0x10

# (code, jump if true, jump if false, constant): load the flags byte, keep SYN and ACK, drop
# (return 0 bytes) when only SYN is set, else keep the whole segment.
_DROP_NEW_CONNECTIONS = (
    (0x30, 0, 0, _TCP_FLAGS_OFFSET),  # BPF_LD | BPF_B | BPF_ABS
    (0x54, 0, 0, _SYN | _ACK),  # BPF_ALU | BPF_AND | BPF_K
    (0x15, 0, 1, _SYN),  # BPF_JMP | BPF_JEQ | BPF_K
    (0x06, 0, 0, 0),  # BPF_RET | BPF_K: drop
    (0x06, 0, 0, 0xFFFFFFFF),  # BPF_RET | BPF_K: keep
)


def refuse_new_connections(listener: socket.socket) -> bool:
    """Drop new connection attempts to ``listener``; return False where the OS cannot."""
    program = b"".join(struct.pack("=HBBI", *instruction) for instruction in _DROP_NEW_CONNECTIONS)
    instructions = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("@HP", len(_DROP_NEW_CONNECTIONS), ctypes.addressof(instructions))
    try:
        listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as exc:  # not Linux, or not a TCP socket
        log.debug("cannot filter new connections on %s: %s", listener, exc)
        return False
    return True
