"""cpu_affinity (issue 19): each connection goes to the worker pinned to
the CPU that received it, and steering ends by itself when connections
arrive on too few CPUs (a network card with one queue), so that one worker
is not given everything.

On loopback the kernel receives a connection on the CPU its client runs
on, so a client pinned to one CPU makes both cases happen for real."""
import json
import os
import socket
import time
import unittest

from gwtest import EchoHandler, GatewayTestCase, socks_open, wait_for

CPUS = sorted(os.sched_getaffinity(0))
HELD = 12              # connections held to see which worker has them
LOPSIDED_MAX = 20000   # connections at most while waiting for the fallback


class pinned:
    """The calling thread on one CPU, then back on all of them."""

    def __init__(self, cpu):
        self.cpu = cpu

    def __enter__(self):
        self.before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {self.cpu})

    def __exit__(self, *exc):
        os.sched_setaffinity(0, self.before)


@unittest.skipIf(len(CPUS) < 2, "needs two CPUs")
class SteerTest(GatewayTestCase):
    gateway_extra = "control_socket ctl.sock\n"

    def steering(self, gw=None):
        stats = json.loads((gw or self.gw).ctl("--json", "stats").stdout)
        return stats["steering"]

    def workers_of_held(self, cpu, port):
        """The workers of HELD sessions opened from a client on cpu."""
        held = []
        try:
            with pinned(cpu):
                for _ in range(HELD):
                    s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1",
                                              port)
                    self.assertEqual(rep, 0)
                    held.append(s)
            live = json.loads(self.gw.ctl("--json", "sessions").stdout)
            return sorted(x["worker"] for x in live["sessions"])
        finally:
            for s in held:
                s.close()
            wait_for(lambda: not json.loads(self.gw.ctl(
                "--json", "sessions").stdout)["sessions"],
                what="the held sessions to end")

    def test_each_cpu_has_its_worker(self):
        port = self.tcp_server(EchoHandler)
        self.assertEqual(self.steering()["state"], "cpu")
        self.assertIn("connections steered", self.gw.log())
        # Without steering the kernel's hash spreads them: all twelve on
        # one worker would be a chance of one in 2,048.
        for cpu in CPUS[:2]:
            self.assertEqual(self.workers_of_held(cpu, port),
                             [cpu % 2] * HELD)

    def test_lopsided_arrivals_end_steering(self):
        port = self.tcp_server(EchoHandler)
        cpu = CPUS[0]
        # Every connection received on one CPU, as behind a card with one
        # queue: within a period or two the proxy gives up steering.
        # Paced, so that the load spans the proxy's periods of 5 s.
        n = 0
        deadline = time.monotonic() + 20
        with pinned(cpu):
            while (self.steering()["state"] == "cpu" and n < LOPSIDED_MAX
                   and time.monotonic() < deadline):
                for _ in range(100):
                    c = socket.create_connection(self.gw.addr, timeout=5)
                    c.sendall(b"\x05\x01\x00")
                    c.close()
                    n += 1
                time.sleep(0.1)
        state = self.steering()
        self.assertEqual(state["state"], "hash", "after %d connections" % n)
        self.assertIn("too few CPUs", state["why"])
        self.gw.wait_log("steering off")
        self.assertNotIn("SO_DETACH_REUSEPORT_BPF", self.gw.log())
        # The kernel's hash again: a pinned client reaches both workers.
        self.assertEqual(set(self.workers_of_held(cpu, port)), {0, 1})

    def test_cpu_affinity_no(self):
        gw = self.start_gateway("control_socket ctl.sock\ncpu_affinity no\n")
        self.assertEqual(self.steering(gw),
                         {"state": "off", "why": "cpu_affinity no"})


if __name__ == "__main__":
    unittest.main()
