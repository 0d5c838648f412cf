#!/usr/bin/python3
"""heartbeat.py - an example command worker (conf.d/10-workers.ini, [heartbeat]).

A program that knows nothing of ward: it speaks systemd's sd_notify protocol
over $NOTIFY_SOCKET, as any Type=notify service does. It says READY=1 once
it has "loaded", keeps a STATUS= line up to date (see `ward status heartbeat`),
sends WATCHDOG=1 when a watchdog is set, and stops cleanly on SIGTERM.
No library needed: the protocol is one datagram per message. (With Debian's
python3-systemd the same is `systemd.daemon.notify("READY=1")`.)
"""
import os
import signal
import socket
import sys
import time


def notify(message):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return  # not run by ward (or systemd): nothing to tell
    if address.startswith("@"):
        address = "\0" + address[1:]  # the abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), address)


class Stop(Exception):
    """SIGTERM: ward (or systemd) asks the program to stop."""


def on_term(signum, frame):
    raise Stop()  # interrupts the sleep at once


def main():
    every = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    signal.signal(signal.SIGTERM, on_term)
    print("loading...", flush=True)
    time.sleep(0.5)  # stands for opening connections, reading files
    notify("READY=1\nSTATUS=ready, no beat yet")
    watchdog = "WATCHDOG_USEC" in os.environ
    beats = 0
    try:
        while True:
            beats += 1
            print(f"beat {beats}", flush=True)
            notify(f"STATUS=beat {beats}" + ("\nWATCHDOG=1" if watchdog else ""))
            time.sleep(every)
    except Stop:
        pass
    notify("STOPPING=1")
    print(f"stopping after {beats} beats", flush=True)


if __name__ == "__main__":
    main()
