"""The ``orchestra`` command line: validate, up --once, and up's teardown on SIGINT."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import orchestra
from orchestra._cli import main
from orchestra.present._kubectl import human_duration

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 80, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""

BAD = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        resources: {limits: {cpu: lots}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: fine}
data: {a: b}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: x, bogus: 1}]
"""


def _orchestra(*args: str, timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestra._cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload]


def test_validate_good(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "app.yaml").write_text(DEPLOYMENT)
    assert main(["validate", "-f", str(tmp_path / "app.yaml")]) == 0
    assert capsys.readouterr().out.strip() == "2 objects valid"


def test_validate_directory_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(DEPLOYMENT)
    (tmp_path / "notes.txt").write_text("not a manifest")
    r = _orchestra("validate", "-f", str(tmp_path), "-f", "-", input=DEPLOYMENT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "4 objects valid"


def test_validate_bad_reports_every_field_path(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    assert main(["validate", "-f", str(tmp_path / "bad.yaml")]) == 1
    out = capsys.readouterr().out
    assert 'document 0 (Deployment "web") is invalid' in out
    assert "spec.template.spec.containers[0].resources.limits[cpu]:" in out
    assert 'document 2 (Pod "p") is invalid' in out
    assert "spec.containers[0].bogus:" in out
    assert "fine" not in out
    assert out.strip().endswith("2 invalid documents; 1 objects valid")


def test_validate_broken_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.yaml").write_text("kind: [unclosed\n")
    assert main(["validate", "-f", str(tmp_path / "x.yaml")]) == 1
    assert "not valid YAML" in capsys.readouterr().out


def test_a_missing_path_is_named_as_kubectl_names_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.yaml")
    for command in ("validate", "up"):
        assert main([command, "-f", missing]) == 1
        captured = capsys.readouterr()
        assert captured.err == f'error: the path "{missing}" does not exist\n'
        assert "Errno" not in captured.out + captured.err


def test_up_into_a_pipe_prints_a_table_only_when_more_than_the_ages_changed(
        tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(DEPLOYMENT)
    r = _orchestra("up", "-f", str(tmp_path / "app.yaml"), "--runtime", "fake",
                   "--timeout", "4")
    assert r.returncode == 0, r.stdout + r.stderr
    tables = ["DEPLOYMENT" + t for t in r.stdout.split("DEPLOYMENT")[1:]]
    assert tables, r.stdout
    assert "web-" in tables[-1] and "Running" in tables[-1], r.stdout  # the settled state
    # (the run lasts 4 s and the ages tick every second: each table says something new)
    ageless = [re.sub(r"\b\d+[smhd]\b", "AGE", t) for t in tables]
    assert all(a != b for a, b in itertools.pairwise(ageless)), r.stdout


def test_no_objects_is_an_error_as_kubectl_says_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not a manifest")
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    for path in (tmp_path / "empty.yaml", tmp_path):
        assert main(["validate", "-f", str(path)]) == 1
        assert capsys.readouterr().err == "error: no objects passed to validate\n"
        assert main(["up", "-f", str(path), "--runtime", "fake", "--once"]) == 1
        assert capsys.readouterr().err == "error: no objects passed to apply\n"


def test_a_kustomization_that_cannot_be_built_is_reported_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "app.yaml").write_text(DEPLOYMENT)
    kust = tmp_path / "k"
    kust.mkdir()
    (kust / "kustomization.yaml").write_text("resourcez:\n- ../app.yaml\n")
    assert main(["validate", "-f", str(kust), "-f", str(tmp_path / "app.yaml")]) == 1
    out = capsys.readouterr().out
    assert f"{kust}: kustomization {kust / 'kustomization.yaml'} is invalid: resourcez: " \
        "Unsupported value: orchestra reads only " in out, out
    assert out.splitlines()[0].endswith('; did you mean "resources"?'), out
    assert out.strip().endswith("1 invalid document; 2 objects valid"), out


def test_build_busybox_without_busybox_says_what_to_install(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "busybox")
    assert main(["image", "build-busybox", str(tmp_path / "out.tar"),
                 "--busybox", missing]) == 1
    assert capsys.readouterr().err == (
        f"error: no busybox program at {missing}: install Debian's busybox-static "
        "(apt-get install busybox-static), or name one with --busybox PATH\n")
    assert not (tmp_path / "out.tar").exists()


def test_python_dash_m_orchestra_is_the_command() -> None:
    r = subprocess.run([sys.executable, "-m", "orchestra", "--version"], capture_output=True,
                       text=True, timeout=60, check=False,
                       env={**os.environ, "PYTHONPATH": str(Path(orchestra.__file__).parents[1])})
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"orchestra {orchestra.__version__}\n"


def test_human_duration() -> None:
    assert [human_duration(s) for s in (5, 119, 125, 600, 3 * 3600 + 60, 30 * 3600,
                                        3 * 86400 + 3600, 20 * 86400)] == \
        ["5s", "119s", "2m5s", "10m", "3h1m", "30h", "3d1h", "20d"]


def test_up_once_fake_runtime(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(DEPLOYMENT)
    r = _orchestra("up", "-f", str(tmp_path / "app.yaml"), "--runtime", "fake", "--nodes", "2",
                   "--once", "--timeout", "30")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(line.split()[:4] == ["web", "2/2", "2", "2"] for line in lines), r.stdout
    pods = [line.split() for line in lines if line.startswith("web-")]
    assert len(pods) == 2
    assert all(p[1] == "1/1" and p[2] == "Running" for p in pods)
    assert all(len(p) == 5 for p in pods)  # a Ready pod has no REASON
    svc = next(line.split() for line in lines if line.startswith("web ") and "ClusterIP" in line)
    assert svc[2] == "80/TCP" and svc[3] == "2"
    assert all(len(line) <= 80 for line in lines)
    assert "stopped" in r.stderr


def test_up_rejects_invalid_manifest(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    r = _orchestra("up", "-f", str(tmp_path / "bad.yaml"), "--runtime", "fake", "--once")
    assert r.returncode == 1
    assert "spec.template.spec.containers[0].resources.limits[cpu]" in r.stderr


def _procs_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_up_sigint_tears_down_process_runtime(tmp_path: Path) -> None:
    marker = f"orchestra-cli-test-{uuid.uuid4().hex}"
    (tmp_path / "app.yaml").write_text(f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: sleeper}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: sleeper}}}}
  template:
    metadata: {{labels: {{app: sleeper}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: sleeper
        image: python
        command: ["{sys.executable}", "-c", "import time; time.sleep(600)  # {marker}"]
""")
    proc = subprocess.Popen([sys.executable, "-m", "orchestra._cli", "up", "-f",
                             str(tmp_path / "app.yaml"), "--runtime", "process"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        seen = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # bounded: the table is printed when it changes
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
            if line.startswith("sleeper ") and line.split()[1] == "2/2":
                break
        else:
            pytest.fail(f"the deployment never became ready:\n{seen}")
        assert len(_procs_with(marker)) == 2, seen
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped" in err
        assert _procs_with(marker) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in _procs_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"orchestra {orchestra.__version__}"


BROKEN = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
      - name: app
        image: python:3
        envFrom: [{configMapRef: {name: app-code}}]
"""


def test_up_once_explains_why_it_gave_up(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(BROKEN)
    r = _orchestra("up", "-f", str(tmp_path / "app.yaml"), "--runtime", "fake", "--once",
                   "--timeout", "3")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("app-"))
    assert "CreateContainerConfigError" in lines[at]
    # the REASON, on a line of its own when the row has no room for it in 80 columns
    assert lines[at + 1] == '    reason: configmap "app-code" not found'
    assert lines[0].endswith("1 node; at most 3s until all is Available")
    assert "not everything became Available within 3s" in r.stderr
    assert "deployment/app is not Available" in r.stderr
    assert 'Warning Failed: Error: configmap "app-code" not found' in r.stderr


@pytest.mark.anyio
async def test_the_live_view_shows_reasons_and_node_port_urls_in_80_columns() -> None:
    import orchestra as oc
    from orchestra._cli import render

    async with oc.Cluster(runtime="fake", network="loopback", nodes=1) as cluster:
        await cluster.apply([BROKEN, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "a-service-with-a-rather-long-name-indeed"},
            "spec": {"type": "NodePort", "selector": {"app": "app"},
                     "ports": [{"port": 80}]}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big"},
             "spec": {"containers": [{"name": "c", "image": "x",
                                      "resources": {"requests": {"cpu": "100"}}}]}}])
        svc = await cluster.get("service/a-service-with-a-rather-long-name-indeed")
        node_port = svc.spec.ports[0].node_port
        await cluster.wait_for("pod/big", lambda p: any(
            c.type == "PodScheduled" and c.status == "False" for c in p.status.conditions or ()),
            timeout=10)
        pods = await cluster.list("Pod", "default", selector="app=app")
        await cluster.wait_for(f"pod/{pods[0].metadata.name}", lambda p: any(
            cs.state.waiting is not None and cs.state.waiting.reason ==
            "CreateContainerConfigError" for cs in p.status.container_statuses or ()),
            timeout=10)
        text = render(cluster)
        lines = text.splitlines()
        assert all(len(line) <= 80 for line in lines), text
        header = next(line for line in lines if line.startswith("POD"))
        assert header.split() == ["POD", "READY", "STATUS", "RESTARTS", "AGE", "REASON"]
        at = next(i for i, line in enumerate(lines) if line.startswith("big "))
        assert "Pending" in lines[at]
        assert lines[at + 1].startswith("    reason: 0/1 nodes are available: 1 Insufficient "
                                        "cpu")
        wide = render(cluster, width=400)
        assert "0/1 nodes are available: 1 Insufficient cpu" in next(
            line for line in wide.splitlines() if line.startswith("big "))
        assert f"http://127.0.0.1:{node_port}" in wide
        row = next(line for line in wide.splitlines() if line.startswith("a-service"))
        assert row.split()[1:4] == ["NodePort", f"80:{node_port}/TCP", "0"]
