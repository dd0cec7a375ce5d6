"""Gateway status documents at the cloud, through a real Mosquitto: what an operator reads in the cloud's log."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from cli.devservers.mosquitto import Mosquitto
from cli.provision import provision_site
from cloud.config import CloudConfig
from cloud.service import Cloud
from quartier.mqtt import MqttLink
from quartier.topics import parse_status, status_topic


def status(failing: list[str], **extra: object) -> bytes:
    alarms = [f"meters not answering: {', '.join(failing)}"] if failing else []
    return json.dumps({"state": "online", "t": time.time(), "alarms": alarms, "failing_meters": failing,
                       **extra}).encode()


def wait_for(predicate: object, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_failing_meters_are_said_one_by_one_and_a_bad_document_is_counted(
    tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    site = provision_site(tmp_path, gateway_id="gw-a", mqtt_port=mosquitto.port,
                          meters=[{"id": "cp1", "model": "sdm630", "host": "127.0.0.1"}])
    cloud = Cloud(CloudConfig.load(site.cloud_config))
    publisher = MqttLink("test-gw-a", "127.0.0.1", mosquitto.port, clean_start=True)
    cloud.start()
    publisher.start()
    try:
        assert cloud.mqtt.wait_connected(10) and publisher.wait_connected(10)
        time.sleep(0.3)
        with caplog.at_level(logging.INFO, logger="cloud.service"):
            for doc in (status(["cp1", "cp2", "linky", "pv"]), status(["cp1", "cp2", "pv"]),
                        b'{"state":"online","alarms":5}', status([])):
                assert publisher.publish(status_topic("gw-a"), doc, qos=1)
                time.sleep(0.2)  # one after the other, in order
            assert wait_for(lambda: cloud.ingestor.counts["status-malformed"] == 1)
            assert wait_for(lambda: any("answers again" in r.getMessage() and "meter pv" in r.getMessage()
                                        for r in caplog.records))
        said = [r.getMessage() for r in caplog.records
                if r.name == "cloud.service" and r.getMessage().startswith("gateway gw-a: ")]
        assert said == [
            "gateway gw-a: meter cp1 not answering", "gateway gw-a: meter cp2 not answering",
            "gateway gw-a: meter linky not answering", "gateway gw-a: meter pv not answering",
            "gateway gw-a: meter linky answers again",
            "gateway gw-a: meter cp1 answers again", "gateway gw-a: meter cp2 answers again",
            "gateway gw-a: meter pv answers again",
        ]
        kept = cloud.ledger.gateway_status("gw-a")
        assert kept is not None and kept[1]["failing_meters"] == []
    finally:
        publisher.stop()
        cloud.stop()


@pytest.mark.parametrize(("payload", "problem"), [
    (b'{"state":"online","alarms":5}', "'alarms' must be a list of strings"),
    (b'{"state":"online","failing_meters":[1]}', "'failing_meters' must be a list of strings"),
    (b'{"state":"online","t":"noon"}', "'t' must be a number"),
])
def test_parse_status_refuses_documents_the_cloud_cannot_read(payload: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_status(payload)
