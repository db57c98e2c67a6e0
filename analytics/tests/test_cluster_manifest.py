"""The Kubernetes manifests `userfluxctl cluster manifest` prints, validated
against the schemas of the two newest Kubernetes versions kubernetes-validate
knows (offline, --strict: no unknown field anywhere), with every option, and
checked field by field against the restricted Pod Security level."""

import json
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils

ROOT = Path(__file__).parents[2]
CTL = ROOT / "target" / "debug" / "userfluxctl"
IMAGE = "registry.test/userflux:1"


def newest_versions(n: int = 2) -> list[str]:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("."))

    return sorted(utils.all_versions(), key=key)[-n:]


def manifest(config: str | Path, *args: str) -> list[dict]:
    out = subprocess.run(
        [str(CTL), "cluster", "manifest", str(ROOT / config), "--image", IMAGE, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    for version in newest_versions():
        for d in docs:
            kubernetes_validate.validate(d, version, strict=True)
    return docs


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs}


def pod_of(docs: list[dict]) -> dict:
    return by_kind(docs)["Job"]["spec"]["template"]["spec"]


def test_the_manifests_are_valid_kubernetes_objects():
    docs = manifest("examples/shop.json", "--shards", "3", "--start-in", "2m")
    assert [d["kind"] for d in docs] == ["ConfigMap", "Job"]
    cm, job = docs
    # the config travels with its data file, named where the pod mounts it
    config = json.loads(cm["data"]["config.json"])
    assert config["data"]["users"]["file"] == "/etc/userflux/data-users.csv"
    assert cm["data"]["data-users.csv"].startswith("user,password\n")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 3
    # one shard's failure neither fails the others nor restarts
    assert spec["backoffLimitPerIndex"] == 0 and "backoffLimit" not in spec
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["USERFLUX_SHARD_COUNT"] == "3" and env["USERFLUX_START_AT"].endswith("Z")
    assert env["USERFLUX_CLUSTER"] == "1"
    # the engine is PID 1: no shell in between
    assert container["command"][0] == "userflux-engine"
    assert "/bin/sh" not in container["command"]
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]


def test_one_name_per_run():
    docs = manifest("examples/shop.json", "--shards", "2")
    name = docs[0]["metadata"]["name"]
    assert name.startswith("userflux-shop-") and len(name) <= 56
    for d in docs:
        assert d["metadata"]["name"] == name
        assert d["metadata"]["labels"]["userflux.dev/group"] == name
    env = {e["name"]: e["value"] for e in pod_of(docs)["containers"][0]["env"]}
    assert env["USERFLUX_GROUP"] == name
    later = manifest("examples/shop.json", "--shards", "2", "--start-in", "5m")
    assert later[0]["metadata"]["name"] != name


def test_the_barrier_by_default_with_the_narrowest_rbac():
    docs = manifest("examples/shop.json", "--shards", "3", "--barrier-timeout", "5m")
    assert [d["kind"] for d in docs] == ["ConfigMap", "ServiceAccount", "Role", "RoleBinding", "Job"]
    kinds = by_kind(docs)
    name = docs[0]["metadata"]["name"]
    assert kinds["Role"]["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    binding = kinds["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "default"}]
    pod = pod_of(docs)
    assert pod["serviceAccountName"] == name and pod["automountServiceAccountToken"] is True
    c = pod["containers"][0]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert "USERFLUX_START_AT" not in env
    assert env["USERFLUX_BARRIER"] == name and env["USERFLUX_BARRIER_TIMEOUT"] == "5m"
    # ready when the engine has written its file, on the emptyDir
    assert c["readinessProbe"]["exec"]["command"] == ["cat", env["USERFLUX_READY_FILE"]]
    assert env["USERFLUX_READY_FILE"].startswith("/userflux/")
    # a given service account is bound, not created
    docs = manifest("examples/shop.json", "--shards", "3", "--service-account", "loadgen")
    assert "ServiceAccount" not in by_kind(docs)
    assert by_kind(docs)["RoleBinding"]["subjects"][0]["name"] == "loadgen"
    assert pod_of(docs)["serviceAccountName"] == "loadgen"
    # a fixed start has no barrier and no RBAC
    docs = manifest("examples/shop.json", "--shards", "3", "--start-in", "2m")
    assert [d["kind"] for d in docs] == ["ConfigMap", "Job"]
    assert "readinessProbe" not in pod_of(docs)["containers"][0]


def test_guaranteed_qos_with_whole_cores():
    docs = manifest("examples/shop.json", "--shards", "2", "--cores", "3", "--memory", "3Gi")
    c = pod_of(docs)["containers"][0]
    assert c["resources"]["requests"] == c["resources"]["limits"] == {"cpu": "3", "memory": "3Gi"}
    # one worker per core the pod owns
    assert c["command"][c["command"].index("--threads") + 1] == "3"


def test_the_pod_passes_the_restricted_pod_security_level():
    """Each field the restricted level checks
    (https://kubernetes.io/docs/concepts/security/pod-security-standards/)."""
    pod = pod_of(manifest("examples/shop.json", "--shards", "2"))
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for v in pod["volumes"]:
        # restricted allows only these volume types
        assert set(v) - {"name"} <= {"configMap", "emptyDir", "secret", "projected", "persistentVolumeClaim"}
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
        assert sc.get("privileged") is not True
        assert sc["readOnlyRootFilesystem"] is True
        assert not any(p.get("hostPort") for p in c.get("ports", []))
    # the read-only root leaves the run directory on an emptyDir
    c = pod["containers"][0]
    run_dir = c["command"][c["command"].index("--run-dir") + 1]
    work = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert any(run_dir.startswith(m["mountPath"] + "/") and m["name"] in work for m in c["volumeMounts"])


def test_the_client_key_goes_to_a_secret(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the test's certificate")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        + ["-keyout", "key.pem", "-out", "cert.pem", "-subj", "/CN=userflux-test", "-days", "1"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    shutil.copy(tmp_path / "cert.pem", tmp_path / "ca.pem")
    key, cert = (tmp_path / "key.pem").read_text(), (tmp_path / "cert.pem").read_text()
    config = tmp_path / "c.json"
    config.write_text(
        json.dumps(
            {
                "name": "mtls",
                "target": "https://127.0.0.1:8443",
                "tls": {"ca_file": "ca.pem", "client_cert": "cert.pem", "client_key": "key.pem"},
                "stages": [{"duration": "5s", "target": 2}],
                "endpoints": [{"name": "a", "path": "/"}],
            }
        )
    )
    docs = manifest(config, "--shards", "2", "--start-in", "1m")
    kinds = by_kind(docs)
    assert [d["kind"] for d in docs] == ["ConfigMap", "Secret", "Job"]
    cm, secret = kinds["ConfigMap"], kinds["Secret"]
    assert "tls-client-key.pem" not in cm["data"]
    assert "PRIVATE KEY" not in json.dumps(cm)
    assert secret["stringData"]["tls-client-key.pem"] == key
    assert cm["data"]["tls-client-cert.pem"] == cert
    tls = json.loads(cm["data"]["config.json"])["tls"]
    assert tls["client_key"] == "/etc/userflux-secret/tls-client-key.pem"
    assert tls["client_cert"] == "/etc/userflux/tls-client-cert.pem"
    pod = pod_of(docs)
    vol = next(v for v in pod["volumes"] if "secret" in v)
    assert vol["secret"]["secretName"] == secret["metadata"]["name"]
    # readable by the pod's group only, which the non-root user is in
    assert vol["secret"]["defaultMode"] == 0o440 and pod["securityContext"]["fsGroup"] == 65534
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == vol["name"])
    assert mount["mountPath"] == "/etc/userflux-secret" and mount["readOnly"]


def test_scheduling_and_identity_options():
    docs = manifest(
        "examples/shop.json",
        "--shards",
        "2",
        "--spread",
        "required",
        "--node-selector",
        "pool=load",
        "--node-selector",
        "zone=a",
        "--toleration",
        "dedicated=load:NoSchedule",
        "--toleration",
        "spot",
        "--image-pull-secret",
        "regcred",
        "--service-account",
        "userflux",
        "--label",
        "team=perf",
    )
    pod = pod_of(docs)
    term = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == {
        "userflux.dev/group": docs[0]["metadata"]["name"],
        "app.kubernetes.io/component": "shard",
    }
    assert by_kind(docs)["Job"]["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "shard"
    assert pod["nodeSelector"] == {"pool": "load", "zone": "a"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "load", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Exists"},
    ]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["serviceAccountName"] == "userflux"
    job = by_kind(docs)["Job"]
    for labels in [d["metadata"]["labels"] for d in docs] + [job["spec"]["template"]["metadata"]["labels"]]:
        assert labels["team"] == "perf"


def test_results_on_a_volume_with_a_reader_pod():
    docs = manifest("examples/shop.json", "--shards", "2", "--results-pvc", "perf-results", "--toleration", "spot")
    name = docs[0]["metadata"]["name"]
    kinds = by_kind(docs)
    pod = pod_of(docs)
    c = pod["containers"][0]
    # each shard's whole run directory on the claim, by its index (the kubelet expands it)
    run_dir = c["command"][c["command"].index("--run-dir") + 1]
    assert run_dir == f"/results/{name}/shard-$(JOB_COMPLETION_INDEX)"
    vol = next(v for v in pod["volumes"] if v["name"] == "results")
    assert vol["persistentVolumeClaim"] == {"claimName": "perf-results"}
    assert {"name": "results", "mountPath": "/results"} in c["volumeMounts"]
    # a reader pod to `kubectl cp` from: the claim read-only, restricted, placed as the shards
    reader = kinds["Pod"]
    assert reader["metadata"]["name"] == f"{name}-results"
    assert reader["metadata"]["labels"]["app.kubernetes.io/component"] == "results"
    spec = reader["spec"]
    assert spec["volumes"][0]["persistentVolumeClaim"] == {"claimName": "perf-results", "readOnly": True}
    assert spec["containers"][0]["volumeMounts"][0]["readOnly"] is True
    assert spec["securityContext"] == pod["securityContext"]
    assert spec["containers"][0]["securityContext"] == c["securityContext"]
    assert spec["tolerations"] == pod["tolerations"]
    assert spec["automountServiceAccountToken"] is False
    # the shards' spread ignores it
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "shard"


def test_json_output_is_the_same_objects():
    out = subprocess.run(
        [
            str(CTL),
            "cluster",
            "manifest",
            str(ROOT / "examples/demo.json"),
            "--image",
            IMAGE,
            "--shards",
            "2",
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lst = json.loads(out)
    kinds = ["ConfigMap", "ServiceAccount", "Role", "RoleBinding", "Job"]
    assert lst["kind"] == "List" and [d["kind"] for d in lst["items"]] == kinds
    for d in lst["items"]:
        kubernetes_validate.validate(d, newest_versions()[-1], strict=True)


@pytest.mark.parametrize(
    "args,want",
    [
        (["--shards", "0"], "--shards"),
        (["--shards", "2", "--start-in", "soon"], "--start-in"),
        (["--shards", "2", "--memory", "lots"], "--memory"),
        (["--shards", "2", "--toleration", "a=b:Sometimes"], "--toleration"),
        (["--shards", "2", "--node-selector", "pool"], "--node-selector"),
        (["--shards", "2", "--label", "=x"], "--label"),
        (["--shards", "2", "--spread", "maybe"], "--spread"),
        (["--shards", "2", "--barrier-timeout", "later"], "--barrier-timeout"),
    ],
)
def test_bad_arguments_are_refused(args, want):
    p = subprocess.run(
        [str(CTL), "cluster", "manifest", str(ROOT / "examples/demo.json"), "--image", "x", *args],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and want in p.stderr, p.stderr
