"""A small MQTT link around paho-mqtt (the only file that imports paho).

Topic names and the status document are in :mod:`quartier.topics`.

TLS (optional): the client checks the broker's certificate against a CA file
and the broker's name, and presents its own certificate; TLS 1.2 or later.
"""

from __future__ import annotations

import logging
import ssl
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from quartier.errors import QuartierError
from quartier.topics import STATUS_OFFLINE, STATUS_ONLINE

log = logging.getLogger(__name__)

class MqttTlsError(QuartierError):
    """The TLS files of an MQTT link are missing, unreadable, too widely readable or do not match."""


def tls_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """A client SSL context: verifies the broker against ``ca`` (name included), TLS 1.2+, optional client cert."""
    if (cert is None) != (key is None):
        raise MqttTlsError("a client certificate needs both its certificate file and its key file")
    for f in (ca, cert, key):
        if f is not None and not Path(f).is_file():
            raise MqttTlsError(f"TLS file {f} does not exist or is not a file")
    if key is not None:
        mode = stat.S_IMODE(Path(key).stat().st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise MqttTlsError(f"private key {key} is readable by others (mode {mode:o}); run: chmod 600 {key}")
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    except (ssl.SSLError, OSError) as e:
        raise MqttTlsError(f"cannot load CA file {ca}: {e}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None and key is not None:
        try:
            ctx.load_cert_chain(str(cert), str(key))
        except (ssl.SSLError, OSError) as e:
            raise MqttTlsError(f"cannot load client certificate {cert} with key {key} (do they match?): {e}") from None
    return ctx


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int


class MqttLink:
    """One MQTT client session with automatic reconnection.

    ``on_message`` runs in paho's network thread. With ``manual_ack`` the
    broker gets its PUBACK only when :meth:`ack` is called, i.e. after the
    message was processed, so a crash before that means redelivery.

    ``tls_ca`` turns TLS on (the broker must present a certificate from that CA
    for ``host``); ``tls_cert``/``tls_key`` are this client's certificate and key.
    ``status_topic`` makes the link announce its presence there: retained
    ``status_payload()`` (default ``{"state":"online"}``, QoS 0) on every
    connection, and a retained last will ``{"state":"offline"}`` (QoS 1) the
    broker publishes if the connection dies without a DISCONNECT; :meth:`stop`
    publishes it itself before disconnecting.
    """

    def __init__(
        self,
        client_id: str,
        host: str,
        port: int,
        subscriptions: Sequence[tuple[str, int]] = (),
        on_message: Callable[[Message], None] | None = None,
        clean_start: bool = False,
        manual_ack: bool = False,
        keepalive_s: int = 30,
        tls_ca: Path | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        status_topic: str | None = None,
        status_payload: Callable[[], bytes] | None = None,
    ) -> None:
        """Args: ``keepalive_s`` in seconds; paths as :class:`pathlib.Path` (see the class docstring)."""
        self.host, self.port = host, port
        self.status_topic = status_topic
        self.status_payload = status_payload or (lambda: STATUS_ONLINE)
        self.subscriptions = list(subscriptions)
        self._on_message = on_message
        self.connected = threading.Event()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_start,
            protocol=paho.MQTTv311,
            manual_ack=manual_ack,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        if tls_ca is not None:
            self._client.tls_set_context(tls_context(tls_ca, tls_cert, tls_key))
        elif tls_cert is not None or tls_key is not None:
            raise MqttTlsError("a client certificate was given without tls_ca (the CA that signed the broker's)")
        if status_topic is not None:
            self._client.will_set(status_topic, STATUS_OFFLINE, qos=1, retain=True)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_connect_fail = self._connect_failed
        self._tls = tls_ca is not None
        self._client.on_message = self._message
        self._keepalive = keepalive_s
        self._down_logged = False

    def start(self) -> None:
        """Connect in the background; reconnects by itself when the broker comes back."""
        self._client.connect_async(self.host, self.port, keepalive=self._keepalive)
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self.connected.wait(timeout_s)

    def stop(self) -> None:
        self._down_logged = True  # a disconnection we asked for is not worth a warning
        if self.status_topic is not None and self.connected.is_set():
            info = self._client.publish(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass  # the connection dropped meanwhile: the broker publishes the last will instead
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Queue a message; False when the client is not connected (the caller retries later)."""
        if not self.connected.is_set():
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == paho.MQTT_ERR_SUCCESS

    def ack(self, msg: Message) -> None:
        """Send the PUBACK for a message received with ``manual_ack``."""
        self._client.ack(msg.mid, msg.qos)

    def _connected(self, client: paho.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT %s:%s refused the connection: %s", self.host, self.port, reason)
            return
        for topic, qos in self.subscriptions:
            client.subscribe(topic, qos)
        if self.status_topic is not None:
            # QoS 0: a state, republished on every connection and change. At QoS 1 a copy left unacknowledged
            # when the link dropped would be resent after this newer one and overwrite the retained state.
            client.publish(self.status_topic, self.status_payload(), qos=0, retain=True)
        self._down_logged = False
        log.info("MQTT connected to %s:%s", self.host, self.port)
        self.connected.set()

    def _connect_failed(self, client: paho.Client, userdata: object) -> None:
        if not self._down_logged:
            hint = "; with TLS also check the CA, the client certificate and the broker's name" if self._tls else ""
            log.warning("MQTT cannot connect to %s:%s (network or TLS handshake failure%s); retrying with backoff",
                        self.host, self.port, hint)
            self._down_logged = True

    def _disconnected(
        self, client: paho.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self.connected.clear()
        if not self._down_logged:
            log.warning("MQTT link to %s:%s lost (%s); reconnecting with backoff", self.host, self.port, reason)
            self._down_logged = True

    def _message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        if self._on_message is None:
            return
        m = Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos)
        try:
            self._on_message(m)
        except Exception:  # a handler bug must not kill the network thread
            log.exception("handler failed for a message on %s", msg.topic)
