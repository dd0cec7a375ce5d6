"""The broker set-up of docs/operations.md ("MQTT security"), run as written, with Mosquitto as its own user.

The commands are read from the document itself; only the root of the file system moves (``/etc`` under a
temporary folder), the broker's port is a free one and its name is ``localhost``. Mosquitto starts from Debian's
own ``mosquitto.conf`` (paths moved likewise), as root, and drops to the ``mosquitto`` user before reading the
key, as ``systemctl restart mosquitto`` would. Then the cloud and a gateway connect with the files the commands
wrote, under the names the documented ``[mqtt]`` table uses.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.devservers import free_port
from cli.main import main
from quartier.config import MqttConfig, Table
from quartier.mqtt import Message, MqttLink
from quartier.topics import batch_topic

DOC = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
DEBIAN_CONF = Path("/etc/mosquitto/mosquitto.conf")

pytestmark = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(not Path(MOSQUITTO).exists(), reason="mosquitto is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the broker user's files need root, as in the docs"),
]


def section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def documented_commands() -> list[list[str]]:
    """The ``quartier pki ...`` lines of the section's first shell block, comments removed."""
    lines = blocks(section("MQTT security"), "sh")[0].splitlines()
    return [shlex.split(line.split("  #")[0]) for line in lines if line.startswith("quartier pki")]


@pytest.fixture
def root() -> Iterator[Path]:
    """A folder standing for ``/``; traversable by the broker's user, as /etc is."""
    path = Path(tempfile.mkdtemp(prefix="quartier-docs-root-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_documented(root: Path, port: int, *, drop: str | None = None) -> None:
    """Run the documented commands under ``root`` (``drop``: leave that option out, to show what it is for)."""
    for argv in documented_commands():
        argv = [a.replace("/etc/", f"{root}/etc/").replace("broker.example.org", "localhost") for a in argv[1:]]
        if argv[:2] == ["pki", "broker"]:
            argv += ["--port", str(port)]
            if drop is not None:
                i = argv.index(drop)
                del argv[i:i + 2]
        cwd = os.getcwd()
        os.chdir(root)  # "out" is relative, as in the docs
        try:
            assert main(argv) == 0, argv
        finally:
            os.chdir(cwd)


def start_debian_mosquitto(root: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """Mosquitto from Debian's mosquitto.conf with its paths under ``root``, started as root (it drops to mosquitto)."""
    conf = DEBIAN_CONF.read_text() if DEBIAN_CONF.exists() else "include_dir /etc/mosquitto/conf.d\n"
    var = root / "var" / "lib" / "mosquitto"
    var.mkdir(parents=True)
    user = pwd.getpwnam("mosquitto")
    os.chown(var, user.pw_uid, user.pw_gid)
    conf = re.sub(r"^(pid_file|log_dest) .*$", "", conf, flags=re.M)
    conf = conf.replace("/var/lib/mosquitto/", f"{var}/").replace("/etc/mosquitto", f"{root}/etc/mosquitto")
    main_conf = root / "etc" / "mosquitto" / "mosquitto.conf"
    main_conf.write_text(conf + "\nlog_dest stderr\n")
    log = root / "mosquitto.log"
    proc = subprocess.Popen([MOSQUITTO, "-c", str(main_conf)], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return proc, log


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout_s: float = 10.0) -> bool:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def documented_mqtt_table(folder: Path, port: int) -> MqttConfig:
    """The docs' ``[mqtt]`` example, host and port set for this test, loaded as a gateway would."""
    example = blocks(section("MQTT security"), "toml")[0]
    example = example.replace('"broker.example.org"', '"localhost"').replace("port = 8883", f"port = {port}")
    import tomllib

    path = folder / "gateway.toml"
    path.write_text(example)
    return MqttConfig.from_table(Table(tomllib.loads(example)["mqtt"], path, "mqtt"))


def test_the_documented_broker_starts_as_its_own_user_and_carries_a_batch(root: Path) -> None:
    port = free_port()
    run_documented(root, port)
    certs = root / "etc" / "mosquitto" / "certs"
    assert sorted(p.name for p in certs.iterdir()) == ["ca.crt", "server.crt", "server.key"]
    key = (certs / "server.key").stat()
    assert (key.st_mode & 0o777, pwd.getpwuid(key.st_uid).pw_name) == (0o600, "mosquitto")
    # The gateway's folder holds exactly what its [mqtt] table names.
    tls = root / "etc" / "quartier" / "tls"
    tls.mkdir(parents=True)
    for name in ("ca.crt", "gw-parking-nord.crt", "gw-parking-nord.key"):
        shutil.copy2(root / "out" / name, tls / name)
    proc, log = start_debian_mosquitto(root)
    try:
        assert wait_listening(proc, port), log.read_text()
        owner = subprocess.run(["ps", "-o", "user=", "-p", str(proc.pid)], capture_output=True, text=True).stdout
        assert owner.strip() == "mosquitto"
        gw_mqtt = documented_mqtt_table(root / "etc" / "quartier", port)
        cloud_tls = root / "etc" / "quartier" / "cloud" / "tls"
        received: list[Message] = []
        got = threading.Event()

        def on_message(msg: Message) -> None:
            received.append(msg)
            got.set()

        cloud = MqttLink("quartier-cloud", "localhost", port, subscriptions=[("quartier/v1/+/batch", 1)],
                         on_message=on_message, clean_start=True, tls_ca=cloud_tls / "ca.crt",
                         tls_cert=cloud_tls / "cloud.crt", tls_key=cloud_tls / "cloud.key")
        gateway = MqttLink("quartier-gw-gw-parking-nord", gw_mqtt.host, gw_mqtt.port, clean_start=True,
                           tls_ca=gw_mqtt.tls_ca, tls_cert=gw_mqtt.tls_cert, tls_key=gw_mqtt.tls_key)
        cloud.start()
        gateway.start()
        try:
            assert cloud.wait_connected(10) and gateway.wait_connected(10), log.read_text()
            time.sleep(0.3)  # the cloud's subscription is in place
            assert gateway.publish(batch_topic("gw-other"), b"not mine", qos=1)  # the ACL drops it
            assert gateway.publish(batch_topic("gw-parking-nord"), b"sealed batch", qos=1)
            assert got.wait(10)
            time.sleep(0.3)
            assert [(m.topic, m.payload) for m in received] == [(batch_topic("gw-parking-nord"), b"sealed batch")]
        finally:
            gateway.stop()
            cloud.stop()
    finally:
        stop(proc)
    assert "Permission denied" not in log.read_text()


def test_without_the_broker_user_the_key_is_unreadable_and_mosquitto_says_so(root: Path) -> None:
    """The failure operators met: a root-only key, and Mosquitto running as its own user."""
    port = free_port()
    run_documented(root, port, drop="--user")
    proc, log = start_debian_mosquitto(root)
    try:
        assert not wait_listening(proc, port, timeout_s=5)
    finally:
        if proc.poll() is None:
            stop(proc)
    assert "Permission denied" in log.read_text()


def test_pki_broker_refuses_an_unknown_user(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "ca", "--dir", str(root / "pki")]) == 0
    assert main(["pki", "broker", "--ca", str(root / "pki"), "--dir", str(root / "mosquitto"),
                 "--user", "no-such-broker-user"]) == 2
    assert "no user 'no-such-broker-user' on this machine" in capsys.readouterr().err
