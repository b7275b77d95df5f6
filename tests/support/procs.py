#!/usr/bin/env python3
"""Process behaviours for the sensor's privileged tests (run under buildwatch by the tests)."""
import os
import socket
import sys
import threading
import time


def double_fork(path, delay):
    """Fork a child that forks a grandchild and exits at once; the grandchild outlives it, then
    opens `path`. The top process waits long enough for the grandchild to finish."""
    child = os.fork()
    if child == 0:
        if os.fork() == 0:
            time.sleep(delay)  # the intermediate child is long gone: re-parented by now
            with open(path, "rb"):
                pass
            os._exit(0)
        os._exit(0)
    os.waitpid(child, 0)
    time.sleep(delay + 0.5)


def threads(count, path):
    """Open `path` from `count` threads at once."""
    barrier = threading.Barrier(count)

    def work():
        barrier.wait()
        for _ in range(5):
            with open(path, "rb"):
                pass

    ts = [threading.Thread(target=work) for _ in range(count)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def connect(host, port):
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"hello")


def storm(count, path):
    """Open `path` as fast as Python can, `count` times."""
    for _ in range(count):
        os.close(os.open(path, os.O_RDONLY))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "double-fork":
        double_fork(args[0], float(args[1]))
    elif cmd == "threads":
        threads(int(args[0]), args[1])
    elif cmd == "connect":
        connect(args[0], args[1])
    elif cmd == "storm":
        storm(int(args[0]), args[1])
    else:
        sys.exit(f"unknown behaviour {cmd}")


if __name__ == "__main__":
    main()
