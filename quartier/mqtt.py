"""Topics and a small MQTT link around paho-mqtt (the only file that imports paho).

Topics (docs/protocol.md)::

    quartier/v1/<gateway_id>/batch   gateway -> cloud, QoS 1, sealed envelopes
    quartier/v1/<gateway_id>/ack     cloud -> gateway, QoS 1, JSON acknowledgements
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)

TOPIC_ROOT = "quartier/v1"


def batch_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/batch"


def ack_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/ack"


def gateway_of(topic: str) -> str | None:
    """The gateway id in a ``quartier/v1/<id>/...`` topic, or None."""
    parts = topic.split("/")
    if len(parts) == 4 and f"{parts[0]}/{parts[1]}" == TOPIC_ROOT:
        return parts[2]
    return None


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
    ) -> None:
        self.host, self.port = host, port
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
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
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
        self._down_logged = False
        log.info("MQTT connected to %s:%s", self.host, self.port)
        self.connected.set()

    def _disconnected(self, client: paho.Client, userdata: object, flags: object, reason: object, props: object) -> None:
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
