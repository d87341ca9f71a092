"""upperd's admin port driven by a gRPC client that is not ours.

Debian's python3-grpcio and python3-protobuf, with message classes that
protoc generates from admin.proto (and gRPC's health.proto) into a temporary
directory, call GetStatus, ListConnections, SetMode and the standard health
service of a real upperd: proof that the API is plain, standard gRPC.

Run by ctest: python3 python_client_test.py --upperd PATH --protoc PATH
    --proto_root DIR --test_proto_root DIR
"""

import argparse
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

import grpc
from google.protobuf import json_format

ARGS = None
TIMEOUT = 10  # seconds, for every call and wait


def generate_messages(out_dir):
    """Compiles the .proto files to Python message modules in out_dir."""
    subprocess.run(
        [ARGS.protoc, f"--proto_path={ARGS.proto_root}",
         f"--proto_path={ARGS.test_proto_root}", f"--python_out={out_dir}",
         "upper/admin/v1/admin.proto", "grpc/health/v1/health.proto"],
        check=True)
    sys.path.insert(0, out_dir)


class Upperd:
    """A real upperd on free loopback ports; its log is read on a thread."""

    def __init__(self, *flags):
        self.process = subprocess.Popen(
            [ARGS.upperd, "--bind=127.0.0.1", "--data_port=0",
             "--admin_port=0", "--metrics_port=0", "--metrics_bind=127.0.0.1",
             *flags],
            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.admin_port = self._port("admin")
        self.data_port = self._port("data")
        self.metrics_port = self._port("metrics")

    def _read(self):
        with self.process.stderr:
            for line in self.process.stderr:
                with self.changed:
                    self.lines.append(line.rstrip("\n"))
                    self.changed.notify_all()

    def _port(self, service):
        pattern = re.compile(rf" listening service={service} addr=\S+:(\d+)")
        deadline = time.monotonic() + TIMEOUT
        with self.changed:
            while True:
                for line in self.lines:
                    match = pattern.search(line)
                    if match:
                        return int(match.group(1))
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise RuntimeError(
                        f"no {service} port in upperd's log:\n" +
                        "\n".join(self.lines))
                self.changed.wait(left)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(TIMEOUT)


def eventually(predicate):
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class PythonClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        generate_messages(cls.tmp.name)
        from upper.admin.v1 import admin_pb2
        cls.admin_pb2 = admin_pb2
        # Loaded by path: the package name `grpc` is grpcio's.
        spec = importlib.util.spec_from_file_location(
            "health_pb2",
            os.path.join(cls.tmp.name, "grpc/health/v1/health_pb2.py"))
        cls.health_pb2 = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cls.health_pb2)

    def setUp(self):
        self.upperd = Upperd("--mode=thread")
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{self.upperd.admin_port}")

    def tearDown(self):
        self.channel.close()
        if self.upperd.process.poll() is None:
            self.upperd.process.kill()
            self.upperd.process.wait(TIMEOUT)

    def call(self, method, request, response_type):
        """A unary call by full method name, as any gRPC client makes it."""
        stub = self.channel.unary_unary(
            f"/upper.admin.v1.AdminService/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString)
        return stub(request, timeout=TIMEOUT)

    def status(self):
        return self.call("GetStatus", self.admin_pb2.GetStatusRequest(),
                         self.admin_pb2.ServerStatus)

    def test_status_connections_and_mode_switch(self):
        pb = self.admin_pb2
        status = self.status()
        self.assertEqual(status.mode, pb.MODE_THREAD)
        self.assertEqual(status.pid, self.upperd.process.pid)
        self.assertEqual(status.active_connections, 0)
        # The JSON mapping works on what upperd sends, as upperctl -o json
        # and grpcurl print it.
        as_json = json_format.MessageToDict(status)
        self.assertEqual(as_json["mode"], "MODE_THREAD")

        with socket.create_connection(("127.0.0.1", self.upperd.data_port),
                                      timeout=TIMEOUT) as client:
            client.sendall(b"hello, upper")
            reply = b""
            while len(reply) < 12:
                chunk = client.recv(64)
                self.assertTrue(chunk, "upperd closed early")
                reply += chunk
            self.assertEqual(reply, b"HELLO, UPPER")
            self.assertTrue(eventually(
                lambda: self.status().sent_bytes_total == 12))
            status = self.status()
            self.assertEqual(status.active_connections, 1)
            self.assertEqual(status.received_bytes_total, 12)

            listed = self.call("ListConnections",
                               pb.ListConnectionsRequest(),
                               pb.ListConnectionsResponse)
            self.assertEqual(len(listed.connections), 1)
            connection = listed.connections[0]
            self.assertEqual(connection.peer_address, "127.0.0.1")
            self.assertEqual(connection.peer_port, client.getsockname()[1])
            self.assertEqual(connection.mode, pb.MODE_THREAD)
            self.assertEqual(connection.received_bytes, 12)

            switched = self.call("SetMode", pb.SetModeRequest(mode=pb.MODE_FORK),
                                 pb.SetModeResponse)
            self.assertEqual(switched.previous_mode, pb.MODE_THREAD)
            self.assertEqual(switched.mode, pb.MODE_FORK)
            self.assertEqual(self.status().mode, pb.MODE_FORK)

        self.assertTrue(eventually(
            lambda: self.status().active_connections == 0))
        self.assertEqual(self.upperd.stop(), 0)

    def test_bad_mode_is_invalid_argument(self):
        pb = self.admin_pb2
        with self.assertRaises(grpc.RpcError) as caught:
            self.call("SetMode", pb.SetModeRequest(mode=pb.MODE_UNSPECIFIED),
                      pb.SetModeResponse)
        self.assertEqual(caught.exception.code(),
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("MODE_FORK or MODE_THREAD", caught.exception.details())

    def test_list_connections_pages(self):
        """Follows next_page_token as any client would; bad tokens refused."""
        pb = self.admin_pb2
        clients = [socket.create_connection(
            ("127.0.0.1", self.upperd.data_port), timeout=TIMEOUT)
            for _ in range(7)]
        try:
            self.assertTrue(eventually(
                lambda: self.status().active_connections == 7))
            ports, pages, token = [], 0, ""
            while pages < 20:  # 7 connections, 2 a page: 4 pages
                page = self.call(
                    "ListConnections",
                    pb.ListConnectionsRequest(page_size=2, page_token=token),
                    pb.ListConnectionsResponse)
                pages += 1
                ports += [c.peer_port for c in page.connections]
                token = page.next_page_token
                if not token:
                    break
            self.assertEqual(pages, 4)
            self.assertEqual(sorted(ports),
                             sorted(c.getsockname()[1] for c in clients))
            for bad in (pb.ListConnectionsRequest(page_token="x"),
                        pb.ListConnectionsRequest(page_size=-1)):
                with self.assertRaises(grpc.RpcError) as caught:
                    self.call("ListConnections", bad,
                              pb.ListConnectionsResponse)
                self.assertEqual(caught.exception.code(),
                                 grpc.StatusCode.INVALID_ARGUMENT)
        finally:
            for client in clients:
                client.close()

    def test_workers_match_metrics(self):
        """GetStatus' workers are the numbers /metrics reports."""
        pb = self.admin_pb2
        upperd = Upperd("--mode=thread", "--thread_spare_max=4",
                        "--thread_spare_timeout=10s")
        channel = grpc.insecure_channel(f"127.0.0.1:{upperd.admin_port}")
        get_status = channel.unary_unary(
            "/upper.admin.v1.AdminService/GetStatus",
            request_serializer=pb.GetStatusRequest.SerializeToString,
            response_deserializer=pb.ServerStatus.FromString)
        try:
            clients = [socket.create_connection(
                ("127.0.0.1", upperd.data_port), timeout=TIMEOUT)
                for _ in range(3)]
            for client in clients:
                client.sendall(b"q")
                self.assertEqual(client.recv(1), b"Q")
            for client in clients:
                client.close()

            def thread_workers():
                status = get_status(pb.GetStatusRequest(), timeout=TIMEOUT)
                self.assertEqual([w.mode for w in status.workers],
                                 [pb.MODE_FORK, pb.MODE_THREAD])
                return status.workers[1]
            self.assertTrue(eventually(
                lambda: thread_workers().busy == 0 and
                thread_workers().idle > 0))
            thread = thread_workers()
            self.assertGreaterEqual(thread.spawns_total, 1)
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{upperd.metrics_port}/metrics",
                    timeout=TIMEOUT) as response:
                text = response.read().decode()
            samples = dict(line.rsplit(" ", 1) for line in text.splitlines()
                           if line and not line.startswith("#"))

            def metric(series):
                return int(float(samples[series]))
            self.assertEqual(
                metric('upper_workers{mode="thread",state="idle"}'),
                thread.idle)
            self.assertEqual(
                metric('upper_workers{mode="thread",state="busy"}'),
                thread.busy)
            self.assertEqual(
                metric('upper_worker_spawns_total{mode="thread"}'),
                thread.spawns_total)
            self.assertEqual(set(thread.exits_by_reason),
                             {"idle_timeout", "shutdown", "cache_full"})
            for reason, count in thread.exits_by_reason.items():
                self.assertEqual(metric(
                    'upper_worker_exits_total{mode="thread",'
                    f'reason="{reason}"}}'), count, reason)
        finally:
            channel.close()
            self.assertEqual(upperd.stop(), 0)

    def test_health_is_serving(self):
        health = self.health_pb2
        check = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health.HealthCheckRequest.SerializeToString,
            response_deserializer=health.HealthCheckResponse.FromString)
        for service in ("", "upper.admin.v1.AdminService"):
            response = check(health.HealthCheckRequest(service=service),
                             timeout=TIMEOUT)
            self.assertEqual(response.status,
                             health.HealthCheckResponse.SERVING, service)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    for flag in ("--upperd", "--protoc", "--proto_root", "--test_proto_root"):
        parser.add_argument(flag, required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
