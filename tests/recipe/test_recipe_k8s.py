"""`happac recipe k8s`: Kubernetes probe snippets that parse as YAML (Debian's
python3-yaml, as Kubernetes reads them) into a readinessProbe on the
profile's Patroni path and a livenessProbe on /liveness, both on happac's
HTTP port, with the fields the kubelet reads. (That a running happac
answers those paths: tests/integration/test_patroni_paths.py.)"""

import pytest
import yaml

from recipe_util import recipe

PROBE_KEYS = {"httpGet", "periodSeconds", "timeoutSeconds", "failureThreshold"}


def k8s(*args):
    text = recipe("k8s", *args)
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict) and set(doc) == {"readinessProbe", "livenessProbe"}, doc
    for name, probe in doc.items():
        assert PROBE_KEYS <= set(probe) <= PROBE_KEYS | {"successThreshold"}, (name, probe)
        assert set(probe["httpGet"]) == {"path", "port"}, probe
        for key in PROBE_KEYS - {"httpGet"}:
            assert isinstance(probe[key], int) and probe[key] >= 1, (name, key, probe)
        assert probe["timeoutSeconds"] <= probe["periodSeconds"], probe
    # a liveness probe needs successThreshold 1 (the kubelet refuses others)
    assert doc["livenessProbe"].get("successThreshold", 1) == 1
    return text, doc


@pytest.mark.parametrize("profile", ["primary", "replica", "read-only", "readiness",
                                     "standby-leader", "health"])
def test_probes_on_the_profile_path_and_liveness(profile):
    text, doc = k8s("--profile", profile)
    ready, live = doc["readinessProbe"], doc["livenessProbe"]
    assert ready["httpGet"] == {"path": "/" + profile, "port": 8405}
    assert live["httpGet"] == {"path": "/liveness", "port": 8405}
    # out within two seconds of happac's 503, back at the first 200
    assert ready["periodSeconds"] * ready["failureThreshold"] <= 2
    assert ready.get("successThreshold", 1) == 1
    # a restart is the last resort: not before 30 s of failures
    assert live["periodSeconds"] * live["failureThreshold"] >= 30
    # the header says how to run happac and where each probe goes
    assert "--http-listen 0.0.0.0:8405" in text
    assert "happac recipe k8s --profile %s --http-port 8405" % profile in text
    assert "Never add it to the Patroni/" in text


def test_http_port():
    text, doc = k8s("--profile", "replica", "--http-port", "9405")
    assert doc["readinessProbe"]["httpGet"]["port"] == 9405
    assert doc["livenessProbe"]["httpGet"]["port"] == 9405
    assert "--http-listen 0.0.0.0:9405" in text
