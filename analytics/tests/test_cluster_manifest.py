"""The Kubernetes manifests `userfluxctl cluster manifest` prints, validated
against the current Kubernetes version's schemas (kubernetes-validate,
offline, --strict: no unknown field anywhere)."""

import json
import subprocess
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).parents[2]
CTL = ROOT / "target" / "debug" / "userfluxctl"


def manifest(config: str, *args: str) -> list[dict]:
    out = subprocess.run(
        [str(CTL), "cluster", "manifest", str(ROOT / config), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_the_manifests_are_valid_kubernetes_objects():
    docs = manifest("examples/shop.json", "--shards", "3", "--image", "registry.test/userflux:1", "--start-in", "2m")
    assert [d["kind"] for d in docs] == ["ConfigMap", "Job"]
    version = kubernetes_validate.latest_version()
    for d in docs:
        kubernetes_validate.validate(d, version, strict=True)
    cm, job = docs
    # the config travels with its data file, named where the pod mounts it
    config = json.loads(cm["data"]["config.json"])
    assert config["data"]["users"]["file"] == "/etc/userflux/data-users.csv"
    assert cm["data"]["data-users.csv"].startswith("user,password\n")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 3
    pod = spec["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["USERFLUX_SHARD_COUNT"] == "3" and env["START_AT"].endswith("Z")
    assert pod["containers"][0]["resources"]["requests"]["cpu"] == "2"
    assert pod["affinity"]["podAntiAffinity"]
    assert "USERFLUX-SUMMARY-BEGIN" in pod["containers"][0]["command"][2]


def test_bad_arguments_are_refused():
    for args, want in [
        (["--shards", "0", "--image", "x"], "--shards"),
        (["--shards", "2", "--image", "x", "--start-in", "soon"], "--start-in"),
    ]:
        p = subprocess.run(
            [str(CTL), "cluster", "manifest", str(ROOT / "examples/demo.json"), *args], capture_output=True, text=True
        )
        assert p.returncode == 2 and want in p.stderr, p.stderr
