"""A private Redis Cluster for tests and benchmarks: 3 masters and 3 replicas on free ports.

Each node is a ``redis-server --cluster-enabled yes`` in its own folder;
``redis-cli --cluster create ... --cluster-replicas 1`` joins them. Nodes can be
frozen (SIGSTOP), thawed, shut down and restarted to test failovers.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from tests.redis.server import redis_server_path

#: seconds a master may be unreachable before its replica takes over
NODE_TIMEOUT_MS = 2000


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 45000)
        if _free(port) and _free(port + 10000):
            return port


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class ClusterNode:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        exe = redis_server_path()
        assert exe is not None
        self.process = subprocess.Popen(
            [
                exe,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
                *("--dir", str(self.folder), "--save", "", "--appendonly", "no"),
                *("--daemonize", "no", "--loglevel", "warning"),
                *("--logfile", str(self.folder / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=2)

    def wait_up(self, deadline: float) -> bool:
        """True once the node answers; False when its process exited (its port was taken
        between choosing it and binding it)."""
        client = self.client()
        try:
            while True:
                try:
                    if client.ping():
                        return True
                except redis.RedisError:
                    if self.process is not None and self.process.poll() is not None:
                        return False
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"cluster node {self.port} did not start") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def role(self) -> str:
        client = self.client()
        try:
            return str(client.execute_command("ROLE")[0], "ascii")
        finally:
            client.close()

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class LocalCluster:
    """Six nodes on 127.0.0.1: three masters, each with one replica."""

    def __init__(self, folder: Path, nodes: int = 6, replicas: int = 1) -> None:
        self.folder = folder
        self.replicas = replicas
        self.nodes = [ClusterNode(folder / f"node{i}", cluster_port()) for i in range(nodes)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])
        return f"redis+cluster://{hosts}"

    def start(self) -> LocalCluster:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not on PATH")
        for node in self.nodes:
            node.start()
        deadline = time.monotonic() + 30  # six servers starting on a loaded machine
        for node in self.nodes:
            for _ in range(3):
                if node.wait_up(deadline):
                    break
                shutil.rmtree(node.folder, ignore_errors=True)
                node.port = cluster_port()
                node.start()
            else:
                raise RuntimeError(f"cluster node {node.port} exited three times on start")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node says the cluster is ok and every slot is served."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self._ok(n) for n in self.nodes if n.process is not None):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not become ok")
            time.sleep(0.1)

    @staticmethod
    def _ok(node: ClusterNode) -> bool:
        client = node.client()
        try:
            info = client.execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            if "cluster_state:ok" not in text or "cluster_slots_ok:16384" not in text:
                return False
            # Replicas in sync: a durable send (WAIT) is confirmed from the start.
            replication = client.info("replication")
            if replication["role"] == "slave":
                return bool(replication["master_link_status"] == "up")
            return True
        except redis.RedisError:
            return False
        finally:
            client.close()

    def master_of(self, key: str) -> ClusterNode:
        """The node serving ``key``'s slot now."""
        for node in self.nodes:
            if node.process is None:
                continue
            client = node.client()
            try:
                slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
                for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        port = int(master[1])
                        return next(n for n in self.nodes if n.port == port)
            except redis.RedisError:
                continue
            finally:
                client.close()
        raise RuntimeError(f"no node serves {key!r}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
