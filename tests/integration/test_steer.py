"""cpu_affinity (issue 19): each connection goes to the worker pinned to
the CPU that received it, and steering ends by itself when connections
arrive on too few CPUs (a network card with one queue), so that one worker
is not given everything.

On loopback the kernel receives a connection on the CPU its client runs
on, so a client pinned to one CPU makes both cases happen for real."""
import json
import os
import socket
import subprocess
import time
import unittest

from gwtest import (GATEWAYD, EchoHandler, GatewayTestCase, free_port,
                    socks_open, wait_for)

CPUS = sorted(os.sched_getaffinity(0))
HELD = 12              # connections held to see which worker has them


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

    def test_one_receiving_cpu_ends_steering(self):
        # A network card with one queue and no RPS, for real: the
        # gateway's loopback, in a namespace of its own, receives every
        # packet on CPU 0, so steering gives worker 0 everything while the
        # load generator and the echo server run on CPU 1. Worker 0
        # saturates; within a period or two the proxy gives up steering.
        cpus = "%x" % (1 << CPUS[0])
        gw = self.start_gateway("control_socket ctl.sock\n", rps_cpus=cpus)
        bench = os.path.join(os.path.dirname(GATEWAYD), "socksbench")
        echo = free_port()
        serve = subprocess.Popen(gw.in_netns(
            ["taskset", "-c", str(CPUS[1]), bench, "serve", str(echo),
             str(free_port())]), stdout=subprocess.DEVNULL)
        self.addCleanup(serve.wait)
        self.addCleanup(serve.kill)
        self.assertEqual(self.steering(gw)["state"], "cpu")
        out = subprocess.run(gw.in_netns(
            ["taskset", "-c", str(CPUS[1]), bench, "rate", "-t",
             "127.0.0.1:%d" % echo, "-s", "%s:%d" % gw.addr, "-c", "32",
             "-d", "12"]), capture_output=True, text=True, timeout=60)
        self.assertIn("errors=0", out.stdout)
        state = self.steering(gw)
        self.assertEqual(state["state"], "hash", out.stdout)
        self.assertIn("too few CPUs", state["why"])
        self.assertRegex(gw.log(), r"worker 0 was busy \d+% of the time "
                         r"and took (\d+) of the last \1 connections, "
                         r"worker 1 0 ")
        self.assertNotIn("SO_DETACH_REUSEPORT_BPF", gw.log())
        # The kernel's hash again: worker 1 gets its share.
        before = state["accepted"]
        out = subprocess.run(gw.in_netns(
            [bench, "rate", "-t", "127.0.0.1:%d" % echo, "-s",
             "%s:%d" % gw.addr, "-c", "4", "-d", "1"]),
            capture_output=True, text=True, timeout=60)
        after = self.steering(gw)["accepted"]
        self.assertGreater(after[1] - before[1], (after[0] - before[0]) / 4,
                           (before, after))

    @unittest.skipIf(os.environ.get("SOCKSGW_SANITIZE") == "1",
                     "a worker under ASan is busier per connection: how "
                     "busy one client makes it says nothing there")
    def test_one_busy_client_keeps_steering(self):
        # Lopsided is no reason by itself: one client on one CPU, as fast
        # as it goes, keeps the worker beside it.
        port = self.tcp_server(EchoHandler)
        bench = os.path.join(os.path.dirname(GATEWAYD), "socksbench")
        out = subprocess.run(
            ["taskset", "-c", str(CPUS[0]), bench, "rate", "-t",
             "127.0.0.1:%d" % port, "-s", "%s:%d" % self.gw.addr, "-c", "1",
             "-d", "11"], capture_output=True, text=True, timeout=60)
        self.assertIn("errors=0", out.stdout)
        self.assertEqual(self.steering()["state"], "cpu", out.stdout)

    def test_cpu_affinity_no(self):
        gw = self.start_gateway("control_socket ctl.sock\ncpu_affinity no\n")
        state = self.steering(gw)
        self.assertEqual((state["state"], state["why"]),
                         ("off", "cpu_affinity no"))


if __name__ == "__main__":
    unittest.main()
