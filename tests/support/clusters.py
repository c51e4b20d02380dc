"""Real clusters on loopback, from Debian's packages: three RabbitMQ nodes joined into
one cluster, and a PostgreSQL primary with a streaming standby. The tests start them,
kill a member hard, and bring it back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

from tests.support.isolated import PG_BIN, PrivatePostgres, PrivateRabbit
from tests.support.services import port_open, wait_until


def _ctl(node: str, *args: str, timeout: float = 120) -> str:
    result = subprocess.run(["rabbitmqctl", "-n", node, *args], capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {node}: {result.stderr[-1500:]}")
    return result.stdout


@dataclass
class RabbitCluster:
    nodes: list[PrivateRabbit] = field(default_factory=lambda: [PrivateRabbit() for _ in range(3)])

    @property
    def url(self) -> str:
        """Every node, as a client of a cluster lists them."""
        return ",".join(node.url for node in self.nodes)

    def start(self) -> RabbitCluster:
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_started()
        first = self.nodes[0].node
        for node in self.nodes[1:]:
            _ctl(node.node, "stop_app")
            _ctl(node.node, "reset")
            _ctl(node.node, "join_cluster", first)
            _ctl(node.node, "start_app")
            wait_until(lambda node=node: port_open(node.port), 90, "the node to rejoin")
        assert self.running() == {node.node for node in self.nodes}
        return self

    def running(self) -> set[str]:
        """The nodes the cluster counts as running now."""
        live = next(node for node in self.nodes if port_open(node.port))
        status = json.loads(_ctl(live.node, "cluster_status", "--formatter", "json"))
        return set(status["running_nodes"])

    def node_of_process(self, pid: int) -> PrivateRabbit:
        """The node a relay process is connected to (its connection's name holds its
        pid; the listing covers the whole cluster, each line the port it came in on)."""
        live = next(node for node in self.nodes if port_open(node.port))
        by_port = {node.port: node for node in self.nodes}
        for line in _ctl(live.node, "list_connections", "name", "client_properties"
                         ).splitlines():
            if f':{pid}"' in line:
                port = int(line.split("\t", 1)[0].rsplit(":", 1)[1])
                return by_port[port]
        raise LookupError(f"no node holds a connection of process {pid}")

    def kill(self, node: PrivateRabbit) -> None:
        """Stop a node the hard way: the Erlang VM killed, nothing flushed or said."""
        pid = int((node.root / "pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not port_open(node.port), 30, "the node to die")

    def restart(self, node: PrivateRabbit) -> None:
        node.launch()
        node.wait_started()

    def destroy(self) -> None:
        for node in self.nodes:
            if port_open(node.port):
                node.stop()
            shutil.rmtree(node.root, ignore_errors=True)


@dataclass
class PostgresPair:
    """A primary and a standby that streams from it (pg_basebackup -R)."""

    primary: PrivatePostgres = field(default_factory=PrivatePostgres)
    standby: PrivatePostgres = field(default_factory=PrivatePostgres)

    @property
    def url(self) -> str:
        return (f"postgresql+psycopg://postgres@127.0.0.1:{self.primary.port},"
                f"127.0.0.1:{self.standby.port}/postgres")

    def start(self) -> PostgresPair:
        self.primary.start()
        self.standby.root.joinpath("data").parent.mkdir(exist_ok=True)
        self.primary.run(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p",
                         str(self.primary.port), "-U", "postgres", "-D",
                         str(self.standby.root / "data"), "-R", "-X", "stream")
        self.standby.start()
        # Synchronous, as the prod overlay runs it: a commit is acknowledged once the
        # standby has it, so promoting the standby loses no acknowledged commit. (With
        # asynchronous replication the last commits before the kill can be lost, and
        # a series whose stage was lost waits for RELAY_STUCK_AFTER to be taken again.)
        self._primary_sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        self._primary_sql("SELECT pg_reload_conf()")
        wait_until(self._streaming_in_sync, 60, "the standby to stream in sync")
        return self

    def _primary_sql(self, sql: str) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.primary.port} user=postgres "
                             "dbname=postgres", autocommit=True) as conn:
            cursor = conn.execute(sql)  # type: ignore[arg-type]
            return list(cursor.fetchall()) if cursor.description else []

    def _streaming_in_sync(self) -> bool:
        rows = self._primary_sql("SELECT count(*) FROM pg_stat_replication "
                                 "WHERE state = 'streaming' AND sync_state = 'sync'")
        return bool(rows and rows[0][0] == 1)

    def kill_primary(self) -> None:
        pid = int((self.primary.root / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not port_open(self.primary.port), 30, "the primary to die")

    def promote_standby(self) -> None:
        self.standby.run(str(PG_BIN / "pg_ctl"), "-D", str(self.standby.root / "data"), "-w",
                         "promote")

    def destroy(self) -> None:
        for member in (self.primary, self.standby):
            if port_open(member.port):
                member.destroy()
            else:
                # A killed postmaster leaves children behind for a moment: let them go.
                time.sleep(0.5)
                shutil.rmtree(member.root, ignore_errors=True)


